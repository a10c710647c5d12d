resource "aws_iam_role" "app" {
  name = "app"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })

  inline_policy {
    name = "decrypt"
    policy = jsonencode({
      Version   = "2012-10-17"
      Statement = [{ Effect = "Allow", Action = "kms:Decrypt", Resource = aws_kms_key.app.arn }]
    })
  }
}

resource "aws_iam_user" "ops" {
  name = "ops"
  path = "/team/"
}

resource "aws_iam_group" "admins" {
  name = "admins"
}

data "aws_iam_policy_document" "kms_admin" {
  statement {
    actions   = ["kms:*"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "kms_admin" {
  name   = "kms-admin"
  path   = "/security/"
  policy = data.aws_iam_policy_document.kms_admin.json
}

resource "aws_iam_role_policy_attachment" "app" {
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.kms_admin.arn
}

resource "aws_iam_user_policy_attachment" "ops" {
  user       = aws_iam_user.ops.name
  policy_arn = aws_iam_policy.kms_admin.arn
}

resource "aws_iam_group_policy_attachment" "admins" {
  group      = aws_iam_group.admins.name
  policy_arn = aws_iam_policy.kms_admin.arn
}

resource "aws_iam_role_policy_attachment" "aws_managed" {
  role       = aws_iam_role.app.name
  policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
}

resource "aws_iam_user_policy" "ops" {
  name = "ops-inline"
  user = aws_iam_user.ops.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["kms:Encrypt"], Resource = "*" }]
  })
}

resource "aws_iam_group_policy" "admins" {
  name  = "admins-inline"
  group = aws_iam_group.admins.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "kms:ScheduleKeyDeletion", Resource = "*" }]
  })
}

resource "aws_iam_role_policy" "app" {
  name = "app-inline"
  role = aws_iam_role.app.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "kms:GenerateDataKey", Resource = "*" }]
  })
}
