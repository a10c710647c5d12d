data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  name       = "${var.app_name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  root       = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"
  common_tags = {
    Environment = var.environment
    Owner       = upper("security")
  }
}

resource "aws_iam_role" "app" {
  name = "${local.name}-app"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_kms_key" "data" {
  description         = "Data key for ${local.name}"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Root"
        Effect    = "Allow"
        Principal = { AWS = local.root }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Admin"
        Effect    = "Allow"
        Principal = { AWS = var.admin_arn }
        Action    = ["kms:Describe*", "kms:Put*"]
        Resource  = "*"
      },
      {
        Sid       = "ViaS3"
        Effect    = "Allow"
        Principal = { "AWS" = aws_iam_role.app.arn }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService"    = "s3.${data.aws_region.current.name}.amazonaws.com"
            "kms:CallerAccount" = local.account_id
          }
        }
      },
    ]
  })
  tags = merge(local.common_tags, {
    Name     = local.name
    Endpoint = aws_s3_bucket.data.bucket_domain_name
  })
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.data.key_id
}

resource "aws_kms_grant" "app" {
  name              = "app-decrypt"
  key_id            = aws_kms_key.data.id
  grantee_principal = aws_iam_role.app.arn
  operations        = ["Decrypt", "GenerateDataKey"]
  constraints {
    encryption_context_equals = {
      app = var.app_name
    }
  }
}

resource "aws_s3_bucket" "data" {
  bucket = "${local.name}-data"
  tags   = local.common_tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
  }
}

module "network" {
  source = "./network"
}

resource "aws_sns_topic" "alerts" {
  name              = module.network.topic_name
  kms_master_key_id = aws_kms_alias.data.name
}
