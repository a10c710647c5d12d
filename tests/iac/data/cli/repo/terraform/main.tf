# kmsguard CLI test: a key without rotation, tags or alias, its policy written with jsonencode().
data "aws_caller_identity" "current" {}

resource "aws_kms_key" "logs" {
  description         = "log archive key"
  enable_key_rotation = false
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Root"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })
}
