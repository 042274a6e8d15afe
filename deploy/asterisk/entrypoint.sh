#!/bin/sh
# Writes the parts of the sample Asterisk's configuration that hold secrets (from the
# environment, never from files in the repository), then runs Asterisk in the foreground.
set -eu
: "${AMI_USERNAME:?set AMI_USERNAME}" "${AMI_SECRET:?set AMI_SECRET}" "${SIP_PASSWORD:?set SIP_PASSWORD}"
umask 077
generated=/tmp/callcenter-asterisk
mkdir -p "$generated"

cat > "$generated/manager_user.conf" <<CONF
[${AMI_USERNAME}]
secret = ${AMI_SECRET}
deny = 0.0.0.0/0.0.0.0
permit = 10.0.0.0/255.0.0.0
permit = 172.16.0.0/255.240.0.0
permit = 192.168.0.0/255.255.0.0
read = system,call,agent,user,dialplan
write = system,call,agent,originate
CONF

for extension in 101 102; do
    cat <<CONF
[${extension}-auth]
type = auth
auth_type = userpass
username = ${extension}
password = ${SIP_PASSWORD}

CONF
done > "$generated/pjsip_auth.conf"

exec asterisk -f -vvv
