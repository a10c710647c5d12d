variable "admin_arn" {
  type        = string
  description = "Who administers the key: no default, so unknown until someone deploys it."
}

variable "environment" {
  type    = string
  default = "dev"
}

variable "app_name" {
  type    = string
  default = "ledger"
}
