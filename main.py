from cifar_gui.app import main

# Guarded: training runs in a "spawn" child process, which imports this file again.
if __name__ == "__main__":
    main()
