# Only read with -var-file: terraform plan does not load it by itself, and neither does kmsguard.
environment = "staging"
