#!/bin/sh
# The share's user, with the password from SMB_PASSWORD, then smbd in the foreground.
set -e
id ferry >/dev/null 2>&1 || useradd --no-create-home ferry
mkdir -p /srv/samba/data && chown ferry /srv/samba/data
printf '%s\n%s\n' "$SMB_PASSWORD" "$SMB_PASSWORD" | smbpasswd -s -a ferry
exec smbd --foreground --no-process-group --debug-stdout
