resource "aws_kms_key" "app" {
  description = "app"
  tags = {
    Team = "payments"
  }
}

resource "aws_kms_alias" "app" {
  name          = "alias/app"
  target_key_id = aws_kms_key.app.key_id
}

resource "aws_kms_key" "signing" {
  provider                 = aws.west
  customer_master_key_spec = "RSA_2048"
  key_usage                = "SIGN_VERIFY"
  enable_key_rotation      = false
}

resource "aws_kms_external_key" "imported" {
  description = "material imported later"
}

resource "aws_s3_bucket" "plain" {
  bucket = "plain-bucket"
}

resource "aws_s3_bucket" "legacy" {
  bucket = "legacy-bucket"
  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm = "aws:kms"
      }
    }
  }
}

resource "aws_s3_bucket" "Unnamed" {}

resource "aws_ebs_volume" "plain" {
  availability_zone = "us-east-1a"
  size              = 8
}

resource "aws_ebs_volume" "cmk" {
  availability_zone = "us-east-1a"
  size              = 8
  encrypted         = true
  kms_key_id        = aws_kms_key.app.arn
}

resource "aws_db_instance" "orders" {
  identifier        = "orders"
  storage_encrypted = true
}

resource "aws_rds_cluster" "aurora" {
  cluster_identifier = "aurora"
  kms_key_id         = aws_kms_key.app.arn
  storage_encrypted  = true
}

resource "aws_rds_cluster_instance" "aurora_1" {
  identifier         = "aurora-1"
  cluster_identifier = aws_rds_cluster.aurora.id
}

resource "aws_secretsmanager_secret" "db" {
  name = "db-password"
}

resource "aws_dynamodb_table" "plain" {
  name     = "plain"
  hash_key = "id"
}

resource "aws_dynamodb_table" "managed" {
  name     = "managed"
  hash_key = "id"
  server_side_encryption {
    enabled = true
  }
}

resource "aws_sns_topic" "alerts" {
  name = "alerts"
}

resource "aws_sqs_queue" "default" {
  name = "default"
}

resource "aws_sqs_queue" "off" {
  name                    = "off"
  sqs_managed_sse_enabled = false
}

resource "aws_sqs_queue" "cmk" {
  name              = "cmk"
  kms_master_key_id = aws_kms_alias.app.name
}

resource "aws_cloudwatch_log_group" "trail" {
  name       = "cloudtrail"
  kms_key_id = aws_kms_key.app.arn
  tags = {
    Team = "payments"
  }
}

resource "aws_ssm_parameter" "secret" {
  name  = "db/password"
  type  = "SecureString"
  value = "not-a-real-secret"
}

resource "aws_ssm_parameter" "plain" {
  name  = "db/host"
  type  = "String"
  value = "db.internal"
}
