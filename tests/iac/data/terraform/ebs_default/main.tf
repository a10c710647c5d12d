resource "aws_kms_key" "ebs" {
  description         = "the Region's default EBS key"
  enable_key_rotation = true
}

resource "aws_ebs_encryption_by_default" "on" {
  enabled = true
}

resource "aws_ebs_default_kms_key" "ebs" {
  key_arn = aws_kms_key.ebs.arn
}

resource "aws_ebs_volume" "data" {
  availability_zone = "us-east-1a"
  size              = 8
}
