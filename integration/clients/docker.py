class Docker:
    name = "docker"
