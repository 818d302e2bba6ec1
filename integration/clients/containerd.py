class Containerd:
    name = "containerd"
