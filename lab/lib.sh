# shellcheck shell=bash
# lab/lib.sh: everything the lab scripts share (sourced, never run).
#
# Owns: the lab's layout under $FLOWTEST_LAB_DIR, config rendering from lab/conf/ templates (also used
# by the Docker entrypoint: one source of truth), secrets and the lab CA, the network namespaces and
# veth links, starting/stopping/reloading the daemons, the network-safety checks and the faults.
# Does not own: what tests assert (tests/lab_*.rs) or flowtest's own configuration (lab/flowtest.toml).

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_CONF=$LAB_REPO/lab/conf
LAB_DIR=${FLOWTEST_LAB_DIR:-/run/flowtest-lab}
# netns: the namespace lab on one machine (lab/up). docker: one container per host (lab/docker/entrypoint).
LAB_MODE=${LAB_MODE:-netns}
LAB_HOSTS=(ec2 dell provider)
LAB_NAMESPACES=(internet ec2 dell provider)
# The lab's address space. Nothing in the root namespace may route these (lab.md, hard rule).
LAB_SUBNETS=(198.18.0.0/15 100.64.0.0/10)
# shellcheck disable=SC2034 # used by lab/up, lab/test and lab/docker/Dockerfile
LAB_PACKAGES=(postfix libsasl2-modules dovecot-imapd dovecot-lmtpd dovecot-sieve swaks libnet-ssleay-perl curl openssl iproute2 ca-certificates)
# The lab DNS server (lab/doctor.sh).
LAB_PACKAGES+=(nsd)
# Users per mail host (the passwords are generated at lab/up into secrets/, never kept in the repo).
DELL_USERS=(alice@corp.test bob@corp.test postmaster@corp.test info@newdomain.test)
PROVIDER_USERS=(probe@provider.test)
LAB_VMAIL_UID=5000
LAB_FAULTS=(dell-down vpn-down vpn-blackhole relay-domain-missing transport-unmapped dovecot-down
  mailstore-permission imap-auth-broken imap-no-idle slow-dell slow-mx)
# The faults `flowtest doctor` is tested against (lab/doctor.sh).
LAB_FAULTS+=(cert-expired cert-wrong-name mx-missing)
# OAuth 2 (lab/oauth.sh).
LAB_FAULTS+=(token-expired)

LAB_STEP="(start)"

# shellcheck source=lab/doctor.sh
source "$LAB_REPO/lab/doctor.sh"
# shellcheck source=lab/oauth.sh
source "$LAB_REPO/lab/oauth.sh"

step() {
  LAB_STEP=$*
  printf '==> %s\n' "$*"
}

note() {
  printf '    %s\n' "$*"
}

die() {
  printf 'lab: FAILED: %s\n' "$*" >&2
  exit 1
}

# Loud failures: name the step and the command that failed.
lab_errtrap() {
  set -E
  trap 'rc=$?; printf "lab: FAILED (exit %s) in step \"%s\": %s (%s line %s)\n" "$rc" "$LAB_STEP" "$BASH_COMMAND" "${BASH_SOURCE[0]##*/}" "$LINENO" >&2; exit "$rc"' ERR
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "the lab needs root (namespaces, daemons); run it as root"
}

lab_is_up() {
  [[ -f $LAB_DIR/state/up ]] && ip netns list 2>/dev/null | grep -qw internet
}

require_up() {
  lab_is_up || die "the mail lab is not up (run \`lab/up\`)"
}

host_fqdn() {
  case $1 in
    ec2) echo mx.corp.test ;;
    dell) echo dell.corp.test ;;
    provider) echo smtp.provider.test ;;
    internet) echo client.internet.test ;;
    *) die "unknown lab host '$1'" ;;
  esac
}

host_domain() {
  case $1 in
    ec2 | dell) echo corp.test ;;
    provider) echo provider.test ;;
    *) die "unknown lab host '$1'" ;;
  esac
}

# NS_PREFIX: the argv prefix that runs a command "on" a lab host: in its network namespace, with its
# own UTS hostname and the lab's /etc/hosts and resolv.conf bind-mounted in a private mount namespace
# (lab.md gotcha 11). In docker mode the container already is the host.
ns_prefix() {
  local host=$1
  if [[ $LAB_MODE == docker ]]; then
    NS_PREFIX=()
    return
  fi
  # Every descriptor above stderr is closed first: a daemon started while a caller holds the lab
  # lock (flock without -o) must not keep holding it for as long as it runs. (No redirection on
  # that loop: bash would park stderr on a high descriptor the loop then closes.)
  # shellcheck disable=SC2016 # expanded by the inner bash
  NS_PREFIX=(ip netns exec "$host" unshare --uts --mount --propagation private --
    /bin/bash -c 'for fd in /proc/self/fd/*; do fd=${fd##*/}; if ((fd > 2)); then eval "exec $fd>&-"; fi; done; mount --bind "$1/etc/hosts" /etc/hosts && mount --bind "$1/etc/resolv.conf" /etc/resolv.conf && hostname "$2" && shift 2 && exec "$@"'
    lab-ns "$LAB_DIR" "$(host_fqdn "$host")")
}

in_ns() {
  local host=$1
  shift
  ns_prefix "$host"
  "${NS_PREFIX[@]}" "$@"
}

# ---------------------------------------------------------------------------------------------------
# Packages

package_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# ensure_packages PKG...: installs what is missing with apt, without starting the system-wide daemons.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    package_installed "$p" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    note "packages present: $*"
    return 0
  fi
  step "installing packages with apt: ${missing[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # policy-rc.d exit 101 stops apt from starting the system-wide postfix/dovecot. Create it only if
  # absent, and remove only the one we created (lab.md).
  local created_policy=0 rc=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, created by flowtest lab/lib.sh during apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } || rc=$?
  if [[ $created_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  [[ $rc -eq 0 ]] || die "apt-get failed (exit $rc) installing: ${missing[*]}"
}

# ---------------------------------------------------------------------------------------------------
# Network safety (hard rule in lab.md): never build over an address space the machine already uses,
# and never leave a lab address or route in the root namespace.

ip2int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# cidr_overlap A/LEN B/LEN: true if the two prefixes share any address.
cidr_overlap() {
  local a=${1%/*} la=${1#*/} b=${2%/*} lb=${2#*/}
  [[ $1 == */* ]] || la=32
  [[ $2 == */* ]] || lb=32
  local l=$((la < lb ? la : lb))
  local mask=$(((0xffffffff << (32 - l)) & 0xffffffff))
  [[ $l -eq 0 ]] && mask=0
  (($(($(ip2int "$a") & mask)) == $(($(ip2int "$b") & mask))))
}

lab_overlaps() {
  local s
  for s in "${LAB_SUBNETS[@]}"; do
    cidr_overlap "$1" "$s" && return 0
  done
  return 1
}

# Prefixes routed in the root namespace (every table), without the default route.
root_route_prefixes() {
  ip -4 -o route show table all | awk '{
    i = 1
    if ($1 ~ /^(unicast|local|broadcast|multicast|anycast|unreachable|blackhole|prohibit|throw|nat)$/) i = 2
    if ($i != "default") print $i
  }'
}

root_addresses() {
  ip -4 -o addr show | awk '{print $4}'
}

apt_source_hosts() {
  shopt -s nullglob
  {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 ~ /^deb/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; break}}'
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'tolower($1) == "uris:" {for (i = 2; i <= NF; i++) print $i}'
  } | sed -n 's|^[a-z+]*://\([^/:]*\).*|\1|p' | sort -u || true
}

check_network_safety() {
  step "checking that the lab's subnets (${LAB_SUBNETS[*]}) are free in the root namespace"
  local p h ip
  while read -r p; do
    [[ -n $p ]] || continue
    if lab_overlaps "$p"; then
      die "the root namespace already routes $p, which overlaps the lab's subnets; refusing to start"
    fi
  done < <(root_route_prefixes)
  while read -r p; do
    [[ -n $p ]] || continue
    lab_overlaps "$p" && die "the root namespace has address $p inside the lab's subnets; refusing to start"
  done < <(root_addresses)
  for h in $(apt_source_hosts); do
    while read -r ip; do
      [[ -n $ip ]] || continue
      lab_overlaps "$ip" && die "apt source host $h resolves to $ip inside the lab's subnets; refusing to start"
    done < <(timeout 10 getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}' | sort -u)
  done
  note "no overlap with root routes, root addresses or apt source hosts"
}

# Fails if any lab address, route or link exists in the root namespace.
assert_root_clean() {
  local p
  while read -r p; do
    [[ -n $p ]] || continue
    lab_overlaps "$p" && die "root namespace has a route for $p (lab address space): this must never happen"
  done < <(root_route_prefixes)
  while read -r p; do
    [[ -n $p ]] || continue
    lab_overlaps "$p" && die "root namespace has lab address $p: this must never happen"
  done < <(root_addresses)
  if ip -o link show | grep -Eq ': (to-(ec2|dell|provider)|tailscale0)[@:]'; then
    die "a lab veth end is in the root namespace"
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------------
# Secrets, CA, configuration

gen_secrets() {
  step "generating secrets (one random password per user, probe HMAC key)"
  install -d -m 0700 "$LAB_DIR/secrets"
  local u
  for u in "${DELL_USERS[@]}" "${PROVIDER_USERS[@]}"; do
    (umask 077 && openssl rand -hex 16 >"$LAB_DIR/secrets/$u")
  done
  (umask 077 && openssl rand -hex 32 >"$LAB_DIR/secrets/probe.key")
}

gen_ca() {
  step "creating the lab CA and a certificate per host"
  local ca=$LAB_DIR/ca
  install -d -m 0755 "$ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/O=flowtest lab/CN=flowtest lab CA" -keyout "$ca/ca.key" -out "$ca/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  chmod 0600 "$ca/ca.key"
  local host sans
  for host in "${LAB_HOSTS[@]}"; do
    case $host in
      ec2) sans="DNS:mx.corp.test,IP:198.18.1.2,IP:100.64.0.1" ;;
      dell) sans="DNS:dell.corp.test,DNS:imap.corp.test,DNS:smtp.corp.test,IP:198.18.3.2,IP:100.64.0.2" ;;
      provider) sans="DNS:smtp.provider.test,DNS:imap.provider.test,DNS:provider.test,IP:198.18.2.2" ;;
    esac
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/O=flowtest lab/CN=$(host_fqdn "$host")" -keyout "$ca/$host.key" -out "$ca/$host.csr" 2>/dev/null
    openssl x509 -req -in "$ca/$host.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial -days 30 \
      -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$sans") \
      -out "$ca/$host.pem" 2>/dev/null
    rm -f "$ca/$host.csr"
    # Postfix and Dovecot read keys as root before dropping privileges.
    chmod 0600 "$ca/$host.key"
  done
  rm -f "$ca/ca.srl"
}

write_etc() {
  install -d -m 0755 "$LAB_DIR/etc"
  cat >"$LAB_DIR/etc/hosts" <<'EOF'
# flowtest lab hosts (bind-mounted over /etc/hosts inside the lab namespaces only)
127.0.0.1   localhost
198.18.1.2  mx.corp.test
198.18.3.2  dell.corp.test imap.corp.test smtp.corp.test
198.18.2.2  smtp.provider.test imap.provider.test provider.test
EOF
  # Names outside /etc/hosts go to the lab DNS (NSD, lab/doctor.sh; authoritative only, it refuses
  # anything else at once). The Docker lab has no such server: there a resolver on the container's
  # own loopback answers "refused" at once. The mail path itself never resolves (IP literals).
  if [[ $LAB_MODE == netns ]]; then
    printf '# flowtest lab: the lab DNS (NSD)\nnameserver %s\noptions timeout:1 attempts:1\n' "$LAB_DNS_IP" >"$LAB_DIR/etc/resolv.conf"
  else
    printf '# flowtest lab: no DNS\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$LAB_DIR/etc/resolv.conf"
  fi
}

# render SRC DST HOST: fills @LAB_DIR@ @HOST@ @FQDN@ @DOMAIN@; fails on any placeholder left over.
render() {
  local src=$1 dst=$2 host=$3
  sed -e "s|@LAB_DIR@|$LAB_DIR|g" -e "s|@HOST@|$host|g" -e "s|@FQDN@|$(host_fqdn "$host")|g" \
    -e "s|@DOMAIN@|$(host_domain "$host")|g" "$src" >"$dst.tmp"
  if grep -n '@[A-Z_]*@' "$dst.tmp" >&2; then
    die "unrendered placeholder in $src"
  fi
  mv "$dst.tmp" "$dst"
}

users_of() {
  case $1 in
    dell) printf '%s\n' "${DELL_USERS[@]}" ;;
    provider) printf '%s\n' "${PROVIDER_USERS[@]}" ;;
  esac
}

# write_users HOST [broken]: the Dovecot passwd-file; "broken" hashes a different random password
# for everyone (the imap-auth-broken fault: logins fail with a password mismatch).
write_users() {
  local host=$1 mode=${2:-} u pw hash out
  out=$LAB_DIR/$1/dovecot/users
  : >"$out.tmp"
  while read -r u; do
    pw=$(cat "$LAB_DIR/secrets/$u")
    [[ $mode == broken ]] && pw=$(openssl rand -hex 16)
    hash=$(openssl passwd -6 -stdin <<<"$pw")
    printf '%s:{SHA512-CRYPT}%s:%s:%s::%s/%s/mail/%s/%s::\n' "$u" "$hash" "$LAB_VMAIL_UID" "$LAB_VMAIL_UID" \
      "$LAB_DIR" "$host" "${u#*@}" "${u%@*}" >>"$out.tmp"
  done < <(users_of "$host")
  chown root:dovecot "$out.tmp"
  chmod 0640 "$out.tmp"
  mv "$out.tmp" "$out"
}

# Postfix stalls ~2 s on a main.cf younger than a second (lab.md gotcha 4): backdate what we write.
backdate() {
  touch -d '10 seconds ago' "$@"
}

pf_dir() {
  echo "$LAB_DIR/$1/postfix"
}

pf() {
  local host=$1
  shift
  in_ns "$host" "$@"
}

postmap_in() {
  local host=$1 map=$2
  in_ns "$host" postmap -c "$(pf_dir "$host")" "hash:$map"
}

# render_host HOST: (re)writes every config file of one host from the templates: the healthy state.
render_host() {
  local host=$1 d
  d=$(pf_dir "$host")
  install -d -m 0755 "$d" "$LAB_DIR/$host/spool"
  install -d -m 0700 -o postfix -g postfix "$LAB_DIR/$host/data"
  {
    cat "$LAB_CONF/common/main.cf.in"
    echo
    cat "$LAB_CONF/$host/main.cf.in"
  } >"$d/main.cf.in"
  render "$d/main.cf.in" "$d/main.cf" "$host"
  {
    cat "$LAB_CONF/common/master.cf.in"
    cat "$LAB_CONF/$host/master.cf.in"
  } >"$d/master.cf.in"
  render "$d/master.cf.in" "$d/master.cf" "$host"
  rm -f "$d/main.cf.in" "$d/master.cf.in"
  render "$LAB_CONF/$host/transport.in" "$d/transport" "$host"
  if [[ $host == dell ]]; then
    (umask 077 && printf '[198.18.2.2]:587 probe@provider.test:%s\n' "$(cat "$LAB_DIR/secrets/probe@provider.test")" >"$d/sasl_passwd")
  fi
  backdate "$d"/*
  if [[ $host != ec2 ]]; then
    local dv=$LAB_DIR/$host/dovecot
    install -d -m 0755 "$dv" "$LAB_DIR/$host/run" "$LAB_DIR/$host/state"
    render "$LAB_CONF/common/dovecot.conf.in" "$dv/dovecot.conf" "$host"
    render "$LAB_CONF/common/dovecot-oauth2.conf.ext.in" "$dv/oauth2.conf.ext" "$host"
    if [[ -f $LAB_CONF/$host/dovecot-local.conf.in ]]; then
      render "$LAB_CONF/$host/dovecot-local.conf.in" "$dv/local.conf" "$host"
    fi
    : >"$dv/fault.conf"
    write_users "$host"
    install -d -m 0755 "$LAB_DIR/$host/mail"
    local u
    while read -r u; do
      # Maildir with INBOX and Junk, owned by the virtual mail uid/gid like production.
      local home=$LAB_DIR/$host/mail/${u#*@}/${u%@*}
      install -d -m 0700 "$home/Maildir/cur" "$home/Maildir/new" "$home/Maildir/tmp" \
        "$home/Maildir/.Junk/cur" "$home/Maildir/.Junk/new" "$home/Maildir/.Junk/tmp"
    done < <(users_of "$host")
    chown -R "$LAB_VMAIL_UID:$LAB_VMAIL_UID" "$LAB_DIR/$host/mail"
  fi
  if [[ $host == dell ]]; then
    install -d -m 0755 "$LAB_DIR/dell/sieve"
    cp "$LAB_CONF/dell/lab-spam.sieve" "$LAB_DIR/dell/sieve/lab-spam.sieve"
    sievec "$LAB_DIR/dell/sieve/lab-spam.sieve"
  fi
}

# Maps need the host's namespace (postmap checks inet_interfaces: lab.md gotcha 2).
postmap_host() {
  local host=$1 d
  d=$(pf_dir "$host")
  postmap_in "$host" "$d/transport"
  [[ $host != dell ]] || postmap_in "$host" "$d/sasl_passwd"
  backdate "$d"/*
}

# ---------------------------------------------------------------------------------------------------
# Namespaces and links

ns_exists() {
  [[ -e /run/netns/$1 ]]
}

# veth_link NS N: internet <-> NS on 198.18.N.0/24; both ends created directly inside their
# namespaces, so no veth end ever exists in the root namespace.
veth_link() {
  local ns=$1 n=$2
  ip link add name "to-$ns" netns internet type veth peer name eth0 netns "$ns"
  ip -n internet addr add "198.18.$n.1/24" dev "to-$ns"
  ip -n internet link set "to-$ns" up
  ip -n "$ns" addr add "198.18.$n.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  # Lab hosts reach each other through the internet hub; no default route anywhere.
  ip -n "$ns" route add 198.18.0.0/15 via "198.18.$n.1"
}

net_up() {
  step "creating namespaces ${LAB_NAMESPACES[*]} and links"
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip netns exec internet sysctl -q -w net.ipv4.ip_forward=1
  veth_link ec2 1
  veth_link provider 2
  veth_link dell 3
  # tailscale0: the VPN between ec2 and dell, CGNAT addresses and Tailscale's MTU.
  ip link add name tailscale0 netns ec2 mtu 1280 type veth peer name tailscale0 netns dell mtu 1280
  ip -n ec2 addr add 100.64.0.1/10 dev tailscale0
  ip -n dell addr add 100.64.0.2/10 dev tailscale0
  ip -n ec2 link set tailscale0 up
  ip -n dell link set tailscale0 up
}

# ---------------------------------------------------------------------------------------------------
# Daemons

pid_alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null
}

postfix_pid() {
  local f=$LAB_DIR/$1/spool/pid/master.pid
  [[ -f $f ]] && tr -d ' \n' <"$f"
}

dovecot_pid() {
  local f=$LAB_DIR/$1/run/master.pid
  [[ -f $f ]] && tr -d ' \n' <"$f"
}

postfix_running() {
  pid_alive "$(postfix_pid "$1" || true)"
}

dovecot_running() {
  pid_alive "$(dovecot_pid "$1" || true)"
}

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every 50 ms.
wait_until() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for: $what"
    sleep 0.05
  done
}

# port_open NS IP PORT: something listens on IP:PORT in NS. Reads the socket table instead of
# connecting, so readiness checks leave no "connect from" noise in the daemons' logs.
port_open() {
  local ns=$1 ip=$2 port=$3 out
  if [[ $LAB_MODE == docker ]]; then
    out=$(ss -Hltn "( sport = :$port )")
  else
    out=$(ip netns exec "$ns" ss -Hltn "( sport = :$port )")
  fi
  grep -Eq "(^|[[:space:]])($ip|0\.0\.0\.0|\*|\[::\]):$port([[:space:]]|$)" <<<"$out"
}

port_closed() {
  ! port_open "$@"
}

start_postfix() {
  local host=$1
  note "starting Postfix on $host ($(host_fqdn "$host"))"
  pf "$host" postfix -c "$(pf_dir "$host")" start </dev/null >>"$LAB_DIR/logs/$host-start.log" 2>&1 ||
    die "postfix on $host did not start; see $LAB_DIR/logs/$host-start.log and $host-postfix.log"
}

stop_postfix() {
  local host=$1
  postfix_running "$host" || return 0
  note "stopping Postfix on $host"
  pf "$host" postfix -c "$(pf_dir "$host")" stop </dev/null >>"$LAB_DIR/logs/$host-start.log" 2>&1 || true
  wait_until 10 "postfix on $host to stop" bash -c "! kill -0 $(postfix_pid "$host" || echo 0)"
}

start_dovecot() {
  local host=$1
  note "starting Dovecot on $host ($(host_fqdn "$host"))"
  # Dovecot keeps inherited stdio open: never leave it on a pipe (lab.md gotcha 5).
  in_ns "$host" dovecot -c "$LAB_DIR/$host/dovecot/dovecot.conf" </dev/null >>"$LAB_DIR/logs/$host-start.log" 2>&1 ||
    die "dovecot on $host did not start; see $LAB_DIR/logs/$host-start.log and $host-dovecot.log"
}

stop_dovecot() {
  local host=$1 pid
  dovecot_running "$host" || return 0
  note "stopping Dovecot on $host"
  pid=$(dovecot_pid "$host")
  kill -TERM "$pid"
  wait_until 10 "dovecot on $host to stop" bash -c "! kill -0 $pid"
}

# Count of master "reload"/"started" lines, to wait until a reload really happened.
log_count() {
  local n
  n=$(grep -c -E "$2" "$1" 2>/dev/null) || true
  echo "${n:-0}"
}

reload_postfix() {
  local host=$1 log=$LAB_DIR/logs/$1-postfix.log before
  before=$(log_count "$log" 'postfix/master\[[0-9]+\]: reload')
  pf "$host" postfix -c "$(pf_dir "$host")" reload </dev/null >>"$LAB_DIR/logs/$host-start.log" 2>&1
  wait_until 10 "postfix on $host to reload" bash -c "(( \$(grep -c -E 'postfix/master\\[[0-9]+\\]: reload' '$log') > $before ))"
}

reload_dovecot() {
  local host=$1 log=$LAB_DIR/logs/$1-dovecot.log before
  before=$(log_count "$log" 'SIGHUP received')
  kill -HUP "$(dovecot_pid "$host")"
  wait_until 10 "dovecot on $host to reload" bash -c "(( \$(grep -c 'SIGHUP received' '$log') > $before ))"
  # The new config is live once the master has re-created its listeners.
  wait_until 10 "dovecot LMTP socket on $host" test -S "$LAB_DIR/$host/run/lmtp"
}

postfix_ports() {
  case $1 in
    ec2) echo "198.18.1.2:25" ;;
    dell) echo "100.64.0.2:2525 198.18.3.2:587" ;;
    provider) echo "198.18.2.2:25 198.18.2.2:587" ;;
  esac
}

dovecot_ip() {
  case $1 in
    dell) echo 198.18.3.2 ;;
    provider) echo 198.18.2.2 ;;
  esac
}

wait_postfix_ready() {
  local host=$1 ep
  for ep in $(postfix_ports "$host"); do
    wait_until 15 "$host Postfix listening on $ep" port_open "$host" "${ep%:*}" "${ep##*:}"
  done
}

wait_dovecot_ready() {
  local host=$1 ip port
  ip=$(dovecot_ip "$host")
  wait_until 15 "Dovecot LMTP socket on $host" test -S "$LAB_DIR/$host/run/lmtp"
  for port in 143 993; do
    wait_until 15 "$host Dovecot listening on $ip:$port" port_open "$host" "$ip" "$port"
  done
}

# clear_auth_penalties HOST: forgets the login penalties Dovecot's anvil holds (a reload keeps
# them). After failed logins from an address Dovecot delays that address's next login by 2 s, 4 s,
# up to 15 s for an hour; a fault that makes logins fail (token-expired, a broken SQL passdb) would
# otherwise slow the healthy lab's first logins after it. `PENALTY-INC IDENT 0 0` is what Dovecot's
# own auth sends after a successful login (perl-base is Essential on Debian: no extra package).
clear_auth_penalties() {
  local host=$1 idents
  mapfile -t idents < <(in_ns "$host" doveadm -c "$LAB_DIR/$host/dovecot/dovecot.conf" penalty 2>/dev/null |
    awk 'NR > 1 && $2 > 0 { print $1 }')
  ((${#idents[@]})) || return 0
  note "clearing Dovecot login penalties on $host (${idents[*]})"
  # shellcheck disable=SC2016 # a Perl program: its $ are Perl's
  in_ns "$host" perl -MIO::Socket::UNIX -e '
    alarm 5;
    my $s = IO::Socket::UNIX->new(Peer => shift @ARGV) or die "anvil: $!\n";
    print $s "VERSION\tanvil\t1\t0\n";
    print $s "PENALTY-INC\t$_\t0\t0\n" for @ARGV;
    print $s "PENALTY-DUMP\n";
    while (my $l = <$s>) { last if $l eq "\n" }' "$LAB_DIR/$host/run/anvil" "${idents[@]}"
}

ensure_running() {
  local host=$1
  if [[ $host != ec2 ]]; then
    if dovecot_running "$host"; then reload_dovecot "$host"; else start_dovecot "$host"; fi
  fi
  if postfix_running "$host"; then reload_postfix "$host"; else start_postfix "$host"; fi
}

flush_queue() {
  pf "$1" postqueue -c "$(pf_dir "$1")" -f
}

queue_count() {
  local n
  n=$(pf "$1" postqueue -c "$(pf_dir "$1")" -j 2>/dev/null | grep -c queue_id) || true
  echo "${n:-0}"
}

# lab_bin NAME: the path of one of the project's lab binaries (target/debug/NAME), built when
# missing (lab/test and lab/demo build the workspace first).
lab_bin() {
  local bin=$LAB_REPO/target/debug/$1
  if [[ ! -x $bin ]]; then
    command -v cargo >/dev/null || die "cargo is needed to build $bin"
    (cd "$LAB_REPO" && cargo build --quiet --bin "$1") >&2 || die "cannot build $1"
  fi
  echo "$bin"
}

# lab_pids: sets `pids` to every process in the lab's namespaces.
lab_pids() {
  local ns
  pids=()
  for ns in "${LAB_NAMESPACES[@]}"; do
    ns_exists "$ns" || continue
    mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
  done
}

# Kills every process in the lab's namespaces (all of them were started by the lab), then removes
# the links and namespaces. Safe to run on a half-built or absent lab.
teardown() {
  step "stopping every process in the lab namespaces"
  local ns pids round
  for round in TERM TERM TERM KILL; do
    lab_pids
    [[ ${#pids[@]} -gt 0 ]] || break
    note "signal $round to ${#pids[@]} process(es)"
    kill "-$round" "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 40); do
      local alive=0 p
      for p in "${pids[@]}"; do pid_alive "$p" && alive=1; done
      [[ $alive -eq 1 ]] || break
      sleep 0.05
    done
  done
  # A killed process can take a while to be reaped (a busy machine, a process exiting from a
  # blocking call): give the last SIGKILL time before calling it stuck.
  local waited
  for waited in $(seq 1 200); do
    lab_pids
    [[ ${#pids[@]} -gt 0 ]] || break
    if ((waited % 20 == 0)); then kill -KILL "${pids[@]}" 2>/dev/null || true; fi
    sleep 0.05
  done
  [[ ${#pids[@]} -eq 0 ]] || die "processes still running in the lab namespaces 10 s after SIGKILL: ${pids[*]}"
  step "removing links and namespaces"
  # Namespace deletion is asynchronous: delete the veths explicitly first (lab.md gotcha 8).
  if ns_exists internet; then
    for ns in ec2 dell provider; do ip -n internet link del "to-$ns" 2>/dev/null || true; done
  fi
  if ns_exists ec2; then ip -n ec2 link del tailscale0 2>/dev/null || true; fi
  for ns in "${LAB_NAMESPACES[@]}"; do
    if ns_exists "$ns"; then ip netns del "$ns"; fi
  done
  for ns in "${LAB_NAMESPACES[@]}"; do
    ns_exists "$ns" && die "namespace $ns still exists after teardown"
  done
  # `ip netns add` turns /run/netns into a mount point; drop it again when no namespace is left.
  if mountpoint -q /run/netns && [[ -z $(ls -A /run/netns) ]]; then
    umount /run/netns
  fi
  if grep -q " $LAB_DIR" /proc/self/mountinfo; then
    die "a mount under $LAB_DIR is left in the root mount namespace"
  fi
  assert_root_clean
}

# ---------------------------------------------------------------------------------------------------
# Faults

add_fault_marker() {
  echo "$*" >>"$LAB_DIR/state/faults"
}

# sleep_fault NAME HOST N SETTING: HOST's Postfix sleeps N s (1..250) where SETTING (a printf
# format, %s for N) says; the faults slow-dell and slow-mx.
sleep_fault() {
  local name=$1 host=$2 n=$3 setting=$4
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 250 ]] || die "$name needs a delay in seconds (1..250), got '${n}'"
  # shellcheck disable=SC2059 # the setting is the format
  pf "$host" postconf -c "$(pf_dir "$host")" -e "$(printf "$setting" "$n")"
  backdate "$(pf_dir "$host")/main.cf"
  reload_postfix "$host"
}

apply_fault() {
  local name=$1
  shift
  case $name in
    dell-down)
      stop_postfix dell
      wait_until 10 "dell :2525 to stop listening" port_closed dell 100.64.0.2 2525
      ;;
    vpn-down)
      ip -n ec2 link set tailscale0 down
      ip -n dell link set tailscale0 down
      ;;
    vpn-blackhole)
      # Frames to dell go to a MAC nobody has: SYNs vanish and connects time out (lab.md gotcha 9).
      ip -n ec2 neigh replace 100.64.0.2 lladdr 02:00:5e:10:00:99 dev tailscale0 nud permanent
      ;;
    relay-domain-missing)
      pf ec2 postconf -c "$(pf_dir ec2)" -e 'relay_domains = newdomain.test'
      backdate "$(pf_dir ec2)/main.cf"
      reload_postfix ec2
      ;;
    transport-unmapped)
      # A new transport map that nobody ran postmap on (no .db): lookups fail with 451 4.3.0.
      local d
      d=$(pf_dir ec2)
      cp "$d/transport" "$d/transport-new"
      rm -f "$d/transport-new.db"
      pf ec2 postconf -c "$d" -e "transport_maps = hash:$d/transport-new"
      backdate "$d/main.cf"
      reload_postfix ec2
      ;;
    dovecot-down)
      stop_dovecot dell
      ;;
    mailstore-permission)
      # The mail store owned by the wrong uid (1000 instead of 5000), as in the operator's guide.
      chown -R 1000:1000 "$LAB_DIR/dell/mail"
      ;;
    imap-auth-broken)
      write_users dell broken
      # passwd-file is re-read only when its mtime (whole seconds) or size changes, checked at most
      # once a second: a same-size file written within the same second could go unnoticed. A reload
      # restarts the auth process, so the broken file is in force when this returns.
      reload_dovecot dell
      ;;
    imap-no-idle)
      printf '# fault imap-no-idle: advertise no IDLE\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ NAMESPACE UIDPLUS CHILDREN UNSELECT MOVE\n' \
        >"$LAB_DIR/dell/dovecot/fault.conf"
      reload_dovecot dell
      ;;
    slow-dell)
      sleep_fault slow-dell dell "${1:-}" "dell_relay_client_restrictions = sleep %s, permit_mynetworks, reject"
      ;;
    slow-mx)
      # Evaluated at RCPT (smtpd_delay_reject): the client waits N s for the RCPT reply.
      sleep_fault slow-mx ec2 "${1:-}" "smtpd_client_restrictions = sleep %s, permit"
      ;;
    *)
      apply_doctor_fault "$name" || apply_oauth_fault "$name" || die "unknown fault '$name' (known: ${LAB_FAULTS[*]})"
      ;;
  esac
  add_fault_marker "$name" "$@"
}

heal() {
  step "restoring the healthy lab"
  ip -n ec2 link set tailscale0 up
  ip -n dell link set tailscale0 up
  ip -n ec2 neigh del 100.64.0.2 dev tailscale0 2>/dev/null || true
  local host
  for host in "${LAB_HOSTS[@]}"; do
    render_host "$host"
    postmap_host "$host"
  done
  rm -f "$(pf_dir ec2)/transport-new" "$(pf_dir ec2)/transport-new.db"
  for host in dell provider ec2; do
    ensure_running "$host"
  done
  for host in dell provider ec2; do
    [[ $host == ec2 ]] || wait_dovecot_ready "$host"
    wait_postfix_ready "$host"
  done
  clear_auth_penalties dell
  clear_auth_penalties provider
  rm -f "$LAB_DIR/state/faults"
  step "flushing the queues (dell, provider, ec2)"
  for host in dell provider ec2; do
    flush_queue "$host"
  done
  heal_doctor
  heal_oauth
}
