#!/bin/sh
# Installs what Postern needs to build and test, with apt-get, only when something is
# missing; quick when everything is there. Run as root (make run / make check call it).
set -eu

BUILD_PKGS="g++ make pkg-config libevent-dev libssl-dev libdb-dev libmariadb-dev
  libsasl2-dev libpcre2-dev catch2 libc-ares-dev"
TEST_PKGS="python3-pytest postfix postfix-pcre postfix-mysql mariadb-server
  mariadb-client dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks
  openssl strace procps iproute2 dnsmasq-base sasl2-bin db-util pflogsumm mailutils
  libnet-ssleay-perl libio-socket-ssl-perl libsasl2-modules libsasl2-modules-db"

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "deps.sh: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Debian's postfix asks how to configure itself; "No configuration" keeps /etc/postfix
    # untouched so the peer runs only where the tests start it.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # apt starts no services here, but keep package scripts from trying.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
    fi
    apt-get update -qq || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/tmp/postern-deps.log 2>&1 || {
        tail -30 /tmp/postern-deps.log >&2
        exit 1
    }
fi

# Debian's postfix installed with "No configuration" has no main.cf, or one without
# setgid_group, and its tools refuse to run until it is set. The tests use Debian's
# postmap/postconf as a reference, so give it the minimum it needs.
if [ -d /etc/postfix ] && [ "$(id -u)" = 0 ]; then
    touch /etc/postfix/main.cf
    grep -q '^setgid_group' /etc/postfix/main.cf || echo 'setgid_group = postdrop' >> /etc/postfix/main.cf
    grep -q '^compatibility_level' /etc/postfix/main.cf || echo 'compatibility_level = 3.6' >> /etc/postfix/main.cf
fi
exit 0
