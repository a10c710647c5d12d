"""kmsguard iac: CloudFormation, CDK output and Terraform judged by the same checks and engine as an account."""
