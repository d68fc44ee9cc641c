# Managed by Ansible (role cloudvirt.platform.app); also runs by hand:
#   nomad job run -var image=registry:5000/cloudvirt/app-backend:0.1.0 ... imagehost-backend.nomad.hcl
# The HTTP API of the image host. Credentials come from the job's own Nomad Variables
# (nomad/jobs/imagehost-backend, written by the role), never from this file.
variable "image" {
  type        = string
  description = "Backend image, registry/name:tag."
}
variable "count" {
  type    = number
  default = 2
}
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "s3_endpoint" {
  type = string
}
variable "s3_bucket" {
  type    = string
  default = "images"
}
variable "s3_region" {
  type    = string
  default = "us-east-1"
}
variable "broker_url" {
  type        = string
  description = "amqp://host:5672/vhost (several separated by ;), without credentials."
}
variable "max_upload_bytes" {
  type    = string
  default = "20M"
}
variable "sizes" {
  type    = string
  default = "128,512,1024"
}
variable "cpu" {
  type    = number
  default = 200
}
variable "memory" {
  type    = number
  default = 256
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

job "imagehost-backend" {
  datacenters = var.datacenters
  type        = "service"

  meta {
    app = "imagehost"
  }

  # One canary first; promoted automatically once healthy, then the rest one at a time. A
  # version that never becomes healthy is reverted to the last stable one.
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

  group "backend" {
    # A stopping instance leaves Consul first and keeps serving this long, so every HAProxy
    # (which asks Consul's DNS every 2 s) has stopped sending it requests before it is told to stop.
    shutdown_delay = "5s"

    count = var.count

    spread {
      attribute = "${node.unique.id}"
    }

    network {
      port "http" {
        to = 8000
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
      name     = "backend"
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
      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "5s"
        timeout  = "4s"
      }
    }

    task "backend" {
      driver       = "docker"
      kill_timeout = "20s"

      config {
        image = var.image
        ports = ["http"]
      }

      env {
        APP_PORT             = "8000"
        APP_S3_ENDPOINT      = var.s3_endpoint
        APP_S3_BUCKET        = var.s3_bucket
        APP_S3_REGION        = var.s3_region
        APP_BROKER_URL       = var.broker_url
        APP_SIZES            = var.sizes
        APP_MAX_UPLOAD_BYTES = var.max_upload_bytes
        APP_CONFIG_FILE      = "/secrets/app.env"
      }

      # Rendered in the task's secrets directory (tmpfs, not in the allocation's logs or the
      # job); the application reads it over the environment. A changed secret restarts the task.
      template {
        destination = "secrets/app.env"
        change_mode = "restart"
        perms       = "0400"
        uid         = 10001 # the image's user
        gid         = 10001
        data        = <<-EOT
        {{- with nomadVar "nomad/jobs/imagehost-backend" }}
        APP_S3_ACCESS_KEY={{ .s3_access_key }}
        APP_S3_SECRET_KEY={{ .s3_secret_key }}
        APP_BROKER_USER={{ .broker_user }}
        APP_BROKER_PASSWORD={{ .broker_password }}
        {{- end }}
        EOT
      }

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }
  }
}
