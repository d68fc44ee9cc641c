# Managed by Ansible (role cloudvirt.platform.app); also runs by hand:
#   nomad job run -var image=registry:5000/cloudvirt/app-frontend:0.1.0 imagehost-frontend.nomad.hcl
# The web page (nginx, static files). It holds no secret and reads no variable.
variable "image" {
  type        = string
  description = "Frontend image, registry/name:tag."
}
variable "count" {
  type    = number
  default = 2
}
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "cpu" {
  type    = number
  default = 100
}
variable "memory" {
  type    = number
  default = 64
}

variable "min_healthy_time" {
  type        = string
  default     = "5s"
  description = "How long a new instance must stay healthy before the rollout goes on."
}
variable "healthy_deadline" {
  type        = string
  default     = "2m"
  description = "How long a new instance may take to become healthy before it counts as failed."
}
variable "progress_deadline" {
  type        = string
  default     = "5m"
  description = "A rollout that makes no progress for this long fails and is reverted."
}

job "imagehost-frontend" {
  datacenters = var.datacenters
  type        = "service"

  meta {
    app = "imagehost"
  }

  update {
    max_parallel      = 1
    canary            = 1
    auto_promote      = true
    auto_revert       = true
    health_check      = "checks"
    min_healthy_time  = var.min_healthy_time
    healthy_deadline  = var.healthy_deadline
    progress_deadline = var.progress_deadline
    stagger           = "5s"
  }

  group "frontend" {
    # A stopping instance leaves Consul first and keeps serving this long, so every HAProxy
    # (which asks Consul's DNS every 2 s) has stopped sending it requests before it is told to stop.
    shutdown_delay = "5s"

    count = var.count

    spread {
      attribute = "${node.unique.id}"
    }

    network {
      port "http" {
        to = 8080
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    reschedule {
      delay          = "10s"
      delay_function = "exponential"
      max_delay      = "2m"
      unlimited      = true
    }

    service {
      name     = "frontend"
      port     = "http"
      provider = "consul"
      tags     = ["imagehost"]

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "frontend" {
      driver = "docker"
      # nginx finishes the requests in flight on SIGQUIT (the image's STOPSIGNAL).
      kill_signal  = "SIGQUIT"
      kill_timeout = "20s"

      config {
        image = var.image
        ports = ["http"]
      }

      env {
        APP_PORT = "8080"
      }

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }
  }
}
