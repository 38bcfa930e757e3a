#!/bin/sh
# ./demo.sh - build fcgi-pm and run two example Django sites behind nginx.
#
#   blog     http://127.0.0.1:8080/   examples/sites/blog     (pool "blog")
#   catalog  http://127.0.0.1:8081/   examples/sites/catalog  (pool "catalog", lxml)
#
# Each site is its own fcgi-pm pool with its own settings module; nginx
# (a private instance, config in a temp dir, using etc/nginx/django-site.conf)
# serves the static files and passes everything else over a unix socket.
# Ctrl-C stops everything.  Installs what is missing with apt-get (as root).
#
#   ./demo.sh              run until Ctrl-C
#   ./demo.sh --check      start, request every page with curl, stop (exit 0 if all OK)
#   DEMO_PORT=9080 ./demo.sh        blog on 9080, catalog on 9081
#   BUILD_DIR=build-demo ./demo.sh  build somewhere else than build/
set -eu
cd "$(dirname "$0")"
ROOT=$(pwd)
. tests/deps.sh

CHECK=no
case ${1:-} in
--check) CHECK=yes ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

BUILD_DIR=${BUILD_DIR:-build}
PORT_BLOG=${DEMO_PORT:-8080}
PORT_CATALOG=$((PORT_BLOG + 1))
PY=/usr/bin/python3

ensure_packages $FCGI_PM_BUILD_PKGS $FCGI_PM_RUN_PKGS

for port in "$PORT_BLOG" "$PORT_CATALOG"; do
	if ! $PY -c 'import socket,sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
			"$port" 2>/dev/null; then
		echo "error: 127.0.0.1:$port is taken; try DEMO_PORT=9080 $0" >&2
		exit 1
	fi
done

echo "==> building into $BUILD_DIR/"
[ -d "$BUILD_DIR/meson-private" ] || meson setup "$BUILD_DIR" >/dev/null
ninja -C "$BUILD_DIR" || { echo "error: build failed" >&2; exit 1; }
FCGI_PM=$ROOT/$BUILD_DIR/fcgi-pm/fcgi-pm
WORKER=$ROOT/$BUILD_DIR/embed/fcgi-pm-worker

RUN=$(mktemp -d /tmp/fcgi-pm-demo.XXXXXX)
chmod 755 "$RUN"                # nginx's workers must reach the sockets
FPM_PID=
NGINX_PID=

stop_all() {
	trap - INT TERM EXIT
	echo
	echo "==> stopping"
	if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
		kill -TERM "$NGINX_PID" 2>/dev/null || true
	fi
	if [ -n "$FPM_PID" ] && kill -0 "$FPM_PID" 2>/dev/null; then
		kill -TERM "$FPM_PID" 2>/dev/null || true    # stops its workers too
	fi
	for pid in $NGINX_PID $FPM_PID; do
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1; i=$((i + 1))
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$RUN"
	echo "==> stopped; removed $RUN"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# --- static files: collected by Django, served by nginx ---------------------
for site in blog catalog; do
	STATIC_ROOT=$RUN/static/$site DJANGO_SETTINGS_MODULE=$site.settings \
		$PY "examples/sites/$site/manage.py" collectstatic --noinput -v 0
done

# --- fcgi-pm: a main file and one file per site ------------------------------
if [ "$(id -u)" -eq 0 ]; then
	# Root starts nginx's workers as www-data: let them connect.  The demo's
	# workers stay root (allow_root) because the checkout may live in /root;
	# a real site runs as its own user (README, "Deploying a Django site").
	POOL_ACCESS='  listen_group = "www-data"
  listen_mode  = 0660
  allow_root   = yes            # demo only: use user = "blog" in production'
	NGINX_USER='user www-data;'
else
	POOL_ACCESS='  listen_mode  = 0600'
	NGINX_USER=
fi

mkdir -p "$RUN/sites.d"
cat > "$RUN/fcgi-pm.conf" <<EOF
# fcgi-pm main configuration (written by demo.sh)
pid_file      = "$RUN/fcgi-pm.pid"
include_dir   = "$RUN/sites.d"
log_level     = notice
worker_binary = "$WORKER"
EOF
for site in blog catalog; do
	cat > "$RUN/sites.d/$site.conf" <<EOF
# the $site site: a Django project, one pool of worker processes
pool $site {
  listen       = "$RUN/\$pool.sock"
$POOL_ACCESS
  chdir        = "$ROOT/examples/sites/$site"
  python_path  = {"$ROOT/examples/sites/$site"}
  module       = "$site.wsgi:application"
  env          = {"DJANGO_SETTINGS_MODULE=$site.settings"}
  pm           = static
  max_children = 2
}
EOF
done

# --- nginx: the tested snippet once per site ---------------------------------
mkdir -p "$RUN/nginx/tmp"
cp /etc/nginx/fastcgi_params /etc/nginx/mime.types "$RUN/nginx/"
site_conf() {   # site port
	sed -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$2;|" \
	    -e "s|alias /srv/mysite/static/;|alias $RUN/static/$1/;|" \
	    -e "s|fastcgi_pass unix:/run/fcgi-pm/mysite.sock;|fastcgi_pass unix:$RUN/$1.sock;|" \
	    etc/nginx/django-site.conf > "$RUN/nginx/$1.conf"
}
site_conf blog "$PORT_BLOG"
site_conf catalog "$PORT_CATALOG"
cat > "$RUN/nginx/nginx.conf" <<EOF
# a private nginx for the demo (written by demo.sh)
$NGINX_USER
worker_processes 1;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log notice;
events { worker_connections 256; }
http {
  include mime.types;
  default_type application/octet-stream;
  access_log $RUN/nginx/access.log;
  client_body_temp_path $RUN/nginx/tmp/body;
  fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
  proxy_temp_path $RUN/nginx/tmp/proxy;
  uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
  scgi_temp_path $RUN/nginx/tmp/scgi;
  include blog.conf;
  include catalog.conf;
}
EOF

# --- start ------------------------------------------------------------------
echo "==> starting fcgi-pm (log below, config in $RUN)"
"$FCGI_PM" -F -c "$RUN/fcgi-pm.conf" </dev/null &
FPM_PID=$!
i=0
until [ -S "$RUN/blog.sock" ] && [ -S "$RUN/catalog.sock" ]; do
	if ! kill -0 "$FPM_PID" 2>/dev/null || [ $i -ge 150 ]; then
		echo "error: fcgi-pm did not create its sockets" >&2
		exit 1
	fi
	sleep 0.1; i=$((i + 1))
done

/usr/sbin/nginx -e "$RUN/nginx/error.log" -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" \
	-g 'daemon off;' </dev/null &
NGINX_PID=$!

up() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null | grep -q '^200$'; }
i=0
until up "http://127.0.0.1:$PORT_BLOG/" && up "http://127.0.0.1:$PORT_CATALOG/"; do
	if ! kill -0 "$NGINX_PID" 2>/dev/null || ! kill -0 "$FPM_PID" 2>/dev/null ||
	   [ $i -ge 60 ]; then
		echo "error: the sites do not answer; nginx error log:" >&2
		tail -n 20 "$RUN/nginx/error.log" >&2 || true
		exit 1
	fi
	sleep 0.5; i=$((i + 1))
done

cat <<EOF

  fcgi-pm demo is running:

    blog     http://127.0.0.1:$PORT_BLOG/                (Django, a CSRF-protected form at /comment/)
    catalog  http://127.0.0.1:$PORT_CATALOG/                (Django + lxml: XPath and XSLT)
             http://127.0.0.1:$PORT_CATALOG/products.xml
    static   http://127.0.0.1:$PORT_BLOG/static/blog/style.css   (served by nginx)
    who      http://127.0.0.1:$PORT_BLOG/whoami/  http://127.0.0.1:$PORT_CATALOG/whoami/

  fcgi-pm pid $FPM_PID, nginx pid $NGINX_PID, config in $RUN
  Press Ctrl-C to stop.

EOF

if [ "$CHECK" = yes ]; then
	fail=0
	for url in "http://127.0.0.1:$PORT_BLOG/" "http://127.0.0.1:$PORT_BLOG/comment/" \
	           "http://127.0.0.1:$PORT_BLOG/static/blog/style.css" \
	           "http://127.0.0.1:$PORT_BLOG/whoami/" \
	           "http://127.0.0.1:$PORT_CATALOG/" "http://127.0.0.1:$PORT_CATALOG/products.xml" \
	           "http://127.0.0.1:$PORT_CATALOG/whoami/"; do
		code=$(curl -s -o "$RUN/page" -m 10 -w '%{http_code}' "$url") || code=000
		echo "$code $url ($(wc -c < "$RUN/page") bytes)"
		[ "$code" = 200 ] || fail=1
	done
	curl -s -m 10 "http://127.0.0.1:$PORT_CATALOG/" | grep -q 'rendered with lxml' || {
		echo "the catalog page was not rendered with lxml"; fail=1; }
	curl -s -m 10 "http://127.0.0.1:$PORT_BLOG/whoami/" | grep -q '"blog.settings"' || {
		echo "the blog does not run with blog.settings"; fail=1; }
	curl -s -m 10 "http://127.0.0.1:$PORT_CATALOG/whoami/" | grep -q '"catalog.settings"' || {
		echo "the catalog does not run with catalog.settings"; fail=1; }
	[ $fail -eq 0 ] && echo "demo check: all pages OK" || echo "demo check: FAILED"
	exit $fail
fi

# Run until Ctrl-C (the traps stop everything) or until fcgi-pm exits.
wait "$FPM_PID" || true
FPM_PID=
echo "fcgi-pm exited"
