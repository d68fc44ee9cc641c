#!/bin/sh
# Render the listen port (APP_PORT, e.g. Nomad's NOMAD_PORT_http) into nginx's config and run it
# in the foreground. Everything nginx writes goes to /tmp: the image runs as www-data.
set -eu
port=${APP_PORT:-8080}
case $port in
  ''|*[!0-9]*) echo "APP_PORT must be a port number, got '$port'" >&2; exit 2 ;;
esac
sed "s/@APP_PORT@/$port/" /etc/imagehost-frontend/nginx.conf.in >/tmp/nginx.conf
exec nginx -e stderr -c /tmp/nginx.conf -g 'daemon off;'
