"""The seed tutorial's constants ("convnets on small image data", written in R), in one place.

Indices in R are 1-based; each constant says which base it uses. This module imports
nothing, so the engine, the window and the benchmarks alike take their numbers from here.
"""

from __future__ import annotations

# The class pair: deer (CIFAR-10 class 4) vs horse (class 7).
PAIR = ("deer", "horse")
PAIR_INDICES = (4, 7)

# The test image the seed shows the activations of: p <- 5 (1-based), index 4.
TEST_IMAGE = 5
TEST_INDEX = TEST_IMAGE - 1

# The ten training pictures the seed draws (R, 1-based), and their 0-based positions.
SAMPLE_IMAGES_R = (9802, 5, 7, 10, 4, 28, 1, 8, 9, 2)
SAMPLE_IMAGES = tuple(i - 1 for i in SAMPLE_IMAGES_R)

# The activation figure: layer 1 channels 1, 5, 15, 20 and layer 6 channels 1, 50, 110
# (layers and channels 1-based, as in R).
ACTIVATION_CHANNELS = ((1, (1, 5, 15, 20)), (6, (1, 50, 110)))

# RMSprop learning rates per variant: 1e-4 for the small CNN, 2e-5 for the VGG16 variants.
LEARNING_RATES = {
    "baseline": 1e-4,
    "augmented": 1e-4,
    "transfer": 2e-5,
    "finetune": 2e-5,
    "pretrain": 1e-4,  # not the seed's: the small CNN's rate (arch "cnn"); VGG16: below
}
# VGG16 trained from random weights (offline): the seed's 2e-5 is for nudging a pretrained
# base, and learns too slowly from scratch.
PRETRAIN_VGG16_LEARNING_RATE = 1e-4

# Suffix of the seed's file names: cifar10_{i}_{j}{suffix}.h5
FILE_SUFFIXES = {
    "baseline": "",
    "augmented": "_augm",
    "transfer": "_transferlearning",
    "finetune": "_finetuningtransferlearning",
    "pretrain": "_pretrainedbase",  # not the seed's; its classes: those of the base
}
