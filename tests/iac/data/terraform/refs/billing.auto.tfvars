app_name = "billing"
