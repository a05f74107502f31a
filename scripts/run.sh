#!/bin/sh
# make run: sets up a self-contained Postern instance under ./run/ for the invoking user,
# shows the configuration commands working on it, and starts the mail system with
# `postern -c run/etc start` (a running instance is reloaded instead).
#
#   sh scripts/run.sh ABS_BUILD_DIR
#
# run/etc      main.cf, master.cf, aliases and a sample lookup table
# run/spool    queue_directory            run/data  data_directory
# run/log      maillog_file (run/log/maillog)
# run/mail     mail_spool_directory: local(8) delivers to run/mail/USER
#
# Running it again keeps your edits to run/etc and only re-asserts the settings that
# tie the instance to this checkout and this user. A command not built yet is skipped
# with a note; a command that is built but gives a wrong answer makes the script fail.
set -eu

BUILD=${1:?usage: sh scripts/run.sh ABS_BUILD_DIR}
TOP=$(cd "$(dirname "$0")/.." && pwd)
# POSTERN_RUN_DIR: another place for the instance (the tests use a temporary one).
RUN=${POSTERN_RUN_DIR:-$TOP/run}
ETC=$RUN/etc
SBIN=$BUILD/sbin
failures=0

mkdir -p "$ETC" "$RUN/spool" "$RUN/data" "$RUN/log" "$RUN/mail"
# The sample tables deliver to the invoking login.
me=$(id -un)
user=$me
group=$(id -gn)
# Postfix (and Postern) refuse a privileged mail_owner or setgid_group: when make run is
# invoked as root, the instance borrows the usual unprivileged accounts instead.
if [ "$(id -u)" = 0 ]; then
    if id postfix >/dev/null 2>&1; then user=postfix; else user=nobody; fi
    if getent group postdrop >/dev/null 2>&1; then group=postdrop; else group=nogroup; fi
fi

# set_param NAME VALUE: replaces "NAME = ..." in run/etc/main.cf (with its continuation
# lines) or appends it, so running twice leaves one line per setting.
set_param() {
    awk -v name="$1" -v value="$2" '
        BEGIN { done = 0; skip = 0 }
        skip && /^[ \t]/ { next }
        { skip = 0 }
        $0 ~ "^" name "[ \t]*=" {
            if (!done) print name " = " value
            done = 1; skip = 1; next
        }
        { print }
        END { if (!done) print name " = " value }
    ' "$ETC/main.cf" > "$ETC/main.cf.tmp" && mv "$ETC/main.cf.tmp" "$ETC/main.cf"
}

# The default files, on the first run only.
[ -f "$ETC/main.cf" ] || cp "$TOP/conf/main.cf" "$ETC/main.cf"
if [ ! -f "$ETC/master.cf" ]; then
    # Unprivileged ports on loopback: the instance needs no root.
    sed -e 's/^smtp      inet /127.0.0.1:2525 inet /' \
        -e 's/^pop3      inet /127.0.0.1:1110 inet /' \
        -e 's/^imap      inet /127.0.0.1:1143 inet /' \
        "$TOP/conf/master.cf" > "$ETC/master.cf"
fi
if [ ! -f "$ETC/aliases" ]; then
    cat > "$ETC/aliases" <<ALIASES
# Local aliases of the run/ instance (aliases(5) syntax). Rebuild with:
#   newaliases -c $ETC
postmaster: $me
abuse: postmaster
webmaster: $me, postmaster
ALIASES
fi
if [ ! -f "$ETC/virtual" ]; then
    cat > "$ETC/virtual" <<VIRTUAL
# A sample lookup table (postmap(1) input): key, white space, value.
alice@example.com   $me
bob@example.com     $me
@example.org        catchall@example.com
VIRTUAL
fi

# data_directory belongs to mail_owner (the daemons run as it); queue_directory is
# root's, and `postern start` creates the queues in it with their owners. As root, the
# daemons running as mail_owner append to the log themselves and local(8) delivers as
# the recipient, so the log belongs to mail_owner and the spool is open like /var/mail.
if [ "$(id -u)" = 0 ]; then
    chown "$user:$group" "$RUN/data"
    chown root:root "$RUN/spool"
    touch "$RUN/log/maillog"
    chown "$user" "$RUN/log/maillog"
    chmod 1777 "$RUN/mail"
fi

set_param queue_directory "$RUN/spool"
set_param data_directory "$RUN/data"
set_param command_directory "$SBIN"
set_param daemon_directory "$BUILD/libexec/postern"
set_param meta_directory "$ETC"
set_param sample_directory "$ETC"
set_param mail_owner "$user"
set_param setgid_group "$group"
set_param sendmail_path "$SBIN/sendmail"
set_param newaliases_path "$SBIN/newaliases"
set_param inet_interfaces "loopback-only"
set_param alias_maps "hash:$ETC/aliases"
set_param alias_database "hash:$ETC/aliases"
set_param maillog_file "$RUN/log/maillog"
set_param maillog_file_prefixes "$RUN, /var, /dev/stdout"
set_param mail_spool_directory "$RUN/mail"

# STARTTLS: a self-signed certificate for this instance, made once with the openssl
# command (the daemons never run a shell). smtpd reads the key before it drops
# privileges, so it stays readable by its owner only.
if [ ! -f "$ETC/smtpd.key" ] || [ ! -f "$ETC/smtpd.pem" ]; then
    if command -v openssl >/dev/null 2>&1; then
        (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
            -subj "/CN=$(hostname 2>/dev/null || echo localhost)" \
            -keyout "$ETC/smtpd.key" -out "$ETC/smtpd.pem" >/dev/null 2>&1) ||
            echo "make run: openssl could not make a certificate: no STARTTLS" >&2
    else
        echo "make run: no openssl command: no STARTTLS" >&2
    fi
fi
if [ -f "$ETC/smtpd.pem" ]; then
    set_param smtpd_tls_cert_file "$ETC/smtpd.pem"
    set_param smtpd_tls_key_file "$ETC/smtpd.key"
    # Your own choice of level (none, encrypt) survives the next make run.
    grep -q '^smtpd_tls_security_level[ \t]*=' "$ETC/main.cf" ||
        set_param smtpd_tls_security_level may
fi

echo "Postern instance in $RUN (user $user, group $group)"
echo "MAIL_CONFIG=$ETC for every command below"
echo
export MAIL_CONFIG="$ETC"

# show CMD ARGS...: prints and runs a built command; skips it when it is not built.
show() {
    prog=$1
    shift
    if [ ! -x "$SBIN/$prog" ]; then
        echo "\$ $prog $*    (not built yet in $BUILD: skipped)"
        return 1
    fi
    echo "\$ $prog $*"
    rc=0
    "$SBIN/$prog" "$@" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    echo "  FAILED: $prog exited with status $rc" >&2
    failures=$((failures + 1))
    return 1
}

# expect WHAT GOT WANT: checks one answer of a round trip.
expect() {
    if [ "$2" = "$3" ]; then
        echo "  ok: $1 -> $2"
    else
        echo "  WRONG: $1 gave '$2', expected '$3'" >&2
        failures=$((failures + 1))
    fi
}

echo "== The settings this instance changes (postconf -n)"
show postconf -c "$ETC" -n || true
echo

echo "== One parameter, expanded"
show postconf -c "$ETC" -x mail_owner maillog_file || true
echo

echo "== A lookup table: build run/etc/virtual.db, then query it"
if show postmap -c "$ETC" "hash:$ETC/virtual"; then
    expect "postmap -q alice@example.com" \
        "$("$SBIN/postmap" -c "$ETC" -q alice@example.com "hash:$ETC/virtual" || true)" "$me"
    expect "postmap -q @example.org" \
        "$("$SBIN/postmap" -c "$ETC" -q @example.org "hash:$ETC/virtual" || true)" \
        "catchall@example.com"
    printf 'bob@example.com\nnobody@example.com\n' > "$RUN/data/keys"
    echo "\$ postmap -c $ETC -q - hash:$ETC/virtual < keys"
    expect "postmap -q - (two keys, one known)" \
        "$("$SBIN/postmap" -c "$ETC" -q - "hash:$ETC/virtual" < "$RUN/data/keys" | tr '\t' ' ' || true)" \
        "bob@example.com $me"
fi
echo

echo "== Aliases: rebuild alias_database with newaliases, query with postalias"
# newaliases takes no -c (Sendmail's command line): it finds main.cf via MAIL_CONFIG,
# which is exported above.
if show newaliases || show postalias -c "$ETC" "hash:$ETC/aliases"; then
    if [ -x "$SBIN/postalias" ]; then
        expect "postalias -q abuse" \
            "$("$SBIN/postalias" -c "$ETC" -q abuse "hash:$ETC/aliases" || true)" "postmaster"
        expect "postalias -q webmaster" \
            "$("$SBIN/postalias" -c "$ETC" -q webmaster "hash:$ETC/aliases" || true)" \
            "$me, postmaster"
    fi
fi
echo

echo "== Logging to maillog_file"
if show postlog -c "$ETC" "make run: instance ready in $RUN"; then
    tail -n 3 "$RUN/log/maillog" | sed 's/^/  /'
fi
echo

echo "== The mail system: postern -c $ETC start"
if [ -x "$SBIN/postern" ] && [ -x "$BUILD/libexec/postern/master" ]; then
    if "$SBIN/postern" -c "$ETC" status >/dev/null 2>&1; then
        # A second make run: the instance is up, so it re-reads the settings above.
        show postern -c "$ETC" reload || true
    else
        show postern -c "$ETC" start || true
    fi
    show postern -c "$ETC" status || true
else
    echo "postern or master is not built yet in $BUILD: the mail system is not started"
fi
echo

cat <<NEXT
Send mail (the daemons that are built deliver it; see run/etc/master.cf):
  echo "Subject: hello" | $SBIN/sendmail -C $ETC $me@localhost
Read it:
  cat $RUN/mail/$me                        the mailbox local(8) delivers to
  tail -f $RUN/log/maillog                 what the daemons did with it
  $SBIN/postqueue -c $ETC -p              mail still in the queue
Control the mail system:
  $SBIN/postern -c $ETC status            (or stop, reload, flush, check)
Try next:
  $SBIN/postconf -c $ETC -d | less          every parameter and its default
  $SBIN/postconf -c $ETC -e myhostname=mail.example.com   then: postern -c $ETC reload
  $SBIN/postconf -c $ETC -M                 the services in master.cf
  $SBIN/postmap -c $ETC -s hash:$ETC/virtual     dump the table
  $SBIN/postlog -c $ETC -p warn "hello"      then: cat $RUN/log/maillog
  MAIL_CONFIG=$ETC $SBIN/postconf -n          the same instance via the environment
run/etc/master.cf listens on 127.0.0.1 ports 2525 (SMTP), 1110 and 1143.
NEXT

if [ "$failures" -ne 0 ]; then
    echo "make run: $failures check(s) failed" >&2
    exit 1
fi
