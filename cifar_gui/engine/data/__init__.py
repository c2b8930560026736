"""The data: CIFAR-10 and image folders as uint8 arrays, class subsets, augmentation."""
