variable "use_cmk" {
  type    = bool
  default = true
}

variable "replicate" {
  type    = bool
  default = false
}

variable "debug" {
  default = false
}

resource "aws_kms_key" "main" {
  count               = var.use_cmk ? 1 : 0
  description         = "only with use_cmk"
  enable_key_rotation = true
}

resource "aws_kms_replica_key" "dr" {
  count           = var.replicate ? 1 : 0
  primary_key_arn = aws_kms_key.main[0].arn
}

resource "aws_kms_key" "never" {
  count       = 0
  description = "count = 0: never created"
}

resource "aws_s3_bucket" "logs" {
  bucket = "logs"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.use_cmk ? "aws:kms" : "AES256"
      kms_master_key_id = var.use_cmk ? aws_kms_key.main[0].arn : null
    }
  }
}

resource "aws_sns_topic" "each" {
  for_each          = toset(["a", "b"])
  name              = "topic-${each.key}"
  kms_master_key_id = one(aws_kms_key.main[*].arn)
}

# Not a type kmsguard maps: its condition does not make worlds.
resource "null_resource" "debug" {
  count = var.debug ? 1 : 0
}
