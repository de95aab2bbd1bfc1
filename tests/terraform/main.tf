# What a DataSync user's Terraform looks like, pointed at Ferry's endpoint: an agent activated
# by its address, the location types Ferry serves, and tasks with options, filters, schedules
# and tags. tests/test_terraform.py gives the variables (terraform.tfvars.json) and drives it.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "endpoint" { type = string }
variable "region" { type = string }
variable "access_key" { type = string }
variable "secret_key" { type = string }
variable "agent_address" { type = string }
variable "filer" { type = string }
variable "smb_user" { type = string }
variable "smb_password" { type = string }
variable "object_storage" {
  type = object({ host = string, port = number, bucket = string, key = string, secret = string })
}
variable "s3_bucket" { type = string }
variable "namenode" { type = object({ host = string, port = number }) }
variable "verify_mode" { type = string }
variable "schedule" { type = string }

provider "aws" {
  region                      = var.region
  access_key                  = var.access_key
  secret_key                  = var.secret_key
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    datasync = var.endpoint
  }
}

resource "aws_datasync_agent" "site" {
  ip_address = var.agent_address
  name       = "filer-site"
  tags       = { site = "lab" }
}

resource "aws_datasync_location_nfs" "projects" {
  server_hostname = var.filer
  subdirectory    = "/x/projects/"
  on_prem_config {
    agent_arns = [aws_datasync_agent.site.arn]
  }
  mount_options {
    version = "AUTOMATIC"
  }
  tags = { role = "source" }
}

resource "aws_datasync_location_smb" "inbox" {
  server_hostname = var.filer
  subdirectory    = "/share/inbox/"
  user            = var.smb_user
  password        = var.smb_password
  agent_arns      = [aws_datasync_agent.site.arn]
  mount_options {
    version = "SMB3"
  }
}

resource "aws_datasync_location_object_storage" "archive" {
  agent_arns      = [aws_datasync_agent.site.arn]
  server_hostname = var.object_storage.host
  server_port     = var.object_storage.port
  server_protocol = "HTTP"
  bucket_name     = var.object_storage.bucket
  subdirectory    = "/archive/"
  access_key      = var.object_storage.key
  secret_key      = var.object_storage.secret
}

resource "aws_datasync_location_s3" "backup" {
  s3_bucket_arn    = "arn:aws:s3:::${var.s3_bucket}"
  subdirectory     = "/backup/"
  s3_storage_class = "STANDARD_IA"
  s3_config {
    bucket_access_role_arn = "arn:aws:iam::111122223333:role/ferry-transfers"
  }
}

resource "aws_datasync_location_hdfs" "lake" {
  agent_arns          = [aws_datasync_agent.site.arn]
  authentication_type = "SIMPLE"
  simple_user         = "hdfs"
  subdirectory        = "/lake/"
  block_size          = 67108864
  replication_factor  = 2
  name_node {
    hostname = var.namenode.host
    port     = var.namenode.port
  }
}

resource "aws_datasync_task" "nightly" {
  name                     = "projects-to-inbox"
  source_location_arn      = aws_datasync_location_nfs.projects.arn
  destination_location_arn = aws_datasync_location_smb.inbox.arn
  options {
    verify_mode            = var.verify_mode
    preserve_deleted_files = "REMOVE"
    posix_permissions      = "NONE"
    uid                    = "NONE"
    gid                    = "NONE"
    bytes_per_second       = -1
    log_level              = "TRANSFER"
  }
  excludes {
    filter_type = "SIMPLE_PATTERN"
    value       = "/tmp|*.bak"
  }
  schedule {
    schedule_expression = var.schedule
  }
  tags = { team = "data", cost = "lab" }
}

resource "aws_datasync_task" "offsite" {
  name                     = "lake-to-backup"
  source_location_arn      = aws_datasync_location_hdfs.lake.arn
  destination_location_arn = aws_datasync_location_s3.backup.arn
  includes {
    filter_type = "SIMPLE_PATTERN"
    value       = "/reports*"
  }
}

resource "aws_datasync_task" "archive" {
  source_location_arn      = aws_datasync_location_smb.inbox.arn
  destination_location_arn = aws_datasync_location_object_storage.archive.arn
}

output "agent" { value = aws_datasync_agent.site.arn }
output "locations" {
  value = {
    nfs            = aws_datasync_location_nfs.projects.arn
    smb            = aws_datasync_location_smb.inbox.arn
    object_storage = aws_datasync_location_object_storage.archive.arn
    s3             = aws_datasync_location_s3.backup.arn
    hdfs           = aws_datasync_location_hdfs.lake.arn
  }
}
output "tasks" {
  value = {
    nightly = aws_datasync_task.nightly.arn
    offsite = aws_datasync_task.offsite.arn
    archive = aws_datasync_task.archive.arn
  }
}
