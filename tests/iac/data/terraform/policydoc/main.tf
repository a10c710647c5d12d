variable "break_glass" {
  default = "arn:aws:iam::123456789012:role/BreakGlass"
}

variable "org_id" {
  type = string
}

variable "readers" {
  default = ["arn:aws:iam::123456789012:role/reader"]
}

data "aws_caller_identity" "me" {}

resource "aws_iam_role" "admin" {
  name               = "KeyAdmin"
  path               = "/security/"
  assume_role_policy = "{}"
}

data "aws_iam_policy_document" "key" {
  policy_id = "key-policy"

  statement {
    sid       = "Root"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.me.account_id}:root"]
    }
  }

  statement {
    sid       = "Admins"
    actions   = ["kms:Describe*", "kms:Put*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.admin.arn]
    }
    principals {
      type        = "AWS"
      identifiers = [var.break_glass]
    }
  }

  statement {
    sid       = "AnyoneInTheOrganization"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalOrgID"
      values   = [var.org_id]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [data.aws_caller_identity.me.account_id]
    }
  }

  statement {
    sid         = "OnlyDecryptForOthers"
    effect      = "Deny"
    not_actions = ["kms:Decrypt"]
    resources   = ["*"]
    not_principals {
      type        = "AWS"
      identifiers = [aws_iam_role.admin.arn]
    }
  }

  dynamic "statement" {
    for_each = var.readers
    content {
      sid       = "Reader${statement.key}"
      actions   = ["kms:Decrypt"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value]
      }
    }
  }
}

resource "aws_kms_key" "main" {
  description = "policy from a policy document"
  policy      = data.aws_iam_policy_document.key.json
}

resource "aws_kms_key" "other" {
  description = "policy from aws_kms_key_policy"
}

resource "aws_kms_key_policy" "other" {
  key_id = aws_kms_key.other.id
  policy = <<-EOT
    {
      "Version": "2012-10-17",
      "Statement": [
        {
          "Sid": "Admin",
          "Effect": "Allow",
          "Principal": {"AWS": "${aws_iam_role.admin.arn}"},
          "Action": "kms:*",
          "Resource": "*",
          "Condition": {"StringEquals": {"aws:username": "$${aws:username}"}}
        }
      ]
    }
  EOT
}

resource "aws_kms_key" "plain" {
  description = "no policy: the default key policy"
}
