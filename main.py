from cifar_gui.app import main

main()
