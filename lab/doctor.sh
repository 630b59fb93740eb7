# shellcheck shell=bash
# lab/doctor.sh: the lab's DNS server and the faults `flowtest doctor` is tested against (sourced by
# lab/lib.sh, never run).
#
# Owns: NSD, authoritative for the lab's domains (MX, A and SPF TXT records), listening on
# 198.18.1.1:53 in the `internet` namespace (every lab host routes there); the faults cert-expired
# (an expired certificate on the MX's port 25), cert-wrong-name (a certificate for another name on
# the dell IMAP server) and mx-missing (corp.test without its MX record). lab/heal undoes them with
# the rest. Does not own: the hosts' /etc/hosts and resolv.conf (lab/lib.sh write_etc).

LAB_DNS_IP=198.18.1.1

dns_dir() {
  echo "$LAB_DIR/dns"
}

# zone_head DOMAIN SERIAL: a zone's SOA and NS records.
zone_head() {
  # shellcheck disable=SC2016 # $TTL is a zone-file directive, not a shell variable
  printf '$TTL 60\n@ IN SOA ns.internet.test. hostmaster.%s. %s 60 60 600 60\n@ IN NS ns.internet.test.\n' "$1" "$2"
}

# write_zones [mx-missing]: the lab's zones; "mx-missing" leaves corp.test without its MX record.
write_zones() {
  local mode=${1:-} d serial
  d=$(dns_dir)
  install -d -m 0755 "$d"
  # A serial that grows with each write, so a reload is never mistaken for the same zone.
  serial=$(date +%s)
  {
    zone_head corp.test "$serial"
    [[ $mode == mx-missing ]] || echo '@ IN MX 10 mx.corp.test.'
    echo '@ IN TXT "v=spf1 ip4:198.18.1.2 ip4:198.18.3.2 -all"'
    echo 'mx IN A 198.18.1.2'
    echo 'dell IN A 198.18.3.2'
    echo 'imap IN A 198.18.3.2'
    echo 'smtp IN A 198.18.3.2'
  } >"$d/corp.test.zone"
  {
    zone_head provider.test "$serial"
    echo '@ IN MX 10 smtp.provider.test.'
    echo '@ IN A 198.18.2.2'
    echo '@ IN TXT "v=spf1 ip4:198.18.2.2 -all"'
    echo 'smtp IN A 198.18.2.2'
    echo 'imap IN A 198.18.2.2'
  } >"$d/provider.test.zone"
  {
    zone_head internet.test "$serial"
    echo "ns IN A $LAB_DNS_IP"
    echo "client IN A $LAB_DNS_IP"
    echo "oauth IN A $LAB_OAUTH_IP"
    echo '@ IN TXT "v=spf1 -all"'
  } >"$d/internet.test.zone"
  {
    zone_head newdomain.test "$serial"
    echo '@ IN MX 10 mx.corp.test.'
    echo '@ IN TXT "v=spf1 ip4:198.18.1.2 -all"'
  } >"$d/newdomain.test.zone"
}

write_nsd_conf() {
  local d z
  d=$(dns_dir)
  install -d -m 0755 "$d/xfr"
  {
    printf 'server:\n'
    printf '  ip-address: %s\n  port: 53\n  username: ""\n  chroot: ""\n' "$LAB_DNS_IP"
    printf '  zonesdir: "%s"\n  database: ""\n  zonelistfile: "%s/zone.list"\n' "$d" "$d"
    printf '  xfrdfile: "%s/xfrd.state"\n  xfrdir: "%s/xfr"\n  pidfile: "%s/nsd.pid"\n' "$d" "$d" "$d"
    printf '  logfile: "%s/logs/internet-dns.log"\n  server-count: 1\n  verbosity: 1\n  hide-version: yes\n' "$LAB_DIR"
    printf 'remote-control:\n  control-enable: no\n'
    for z in corp.test provider.test internet.test newdomain.test; do
      printf 'zone:\n  name: %s\n  zonefile: "%s.zone"\n' "$z" "$z"
    done
  } >"$d/nsd.conf"
  nsd-checkconf "$d/nsd.conf" || die "nsd-checkconf rejected $d/nsd.conf"
}

dns_pid() {
  local f
  f=$(dns_dir)/nsd.pid
  [[ -f $f ]] && tr -d ' \n' <"$f"
}

dns_running() {
  pid_alive "$(dns_pid || true)"
}

stop_dns() {
  local pid
  dns_running || return 0
  pid=$(dns_pid)
  kill -TERM "$pid"
  wait_until 10 "nsd to stop" bash -c "! kill -0 $pid"
}

# start_dns: (re)starts NSD in the internet namespace and waits until it answers on port 53.
start_dns() {
  local d
  d=$(dns_dir)
  stop_dns
  rm -f "$d/nsd.pid" "$d/xfrd.state" "$d/zone.list"
  note "starting NSD (lab DNS) on $LAB_DNS_IP:53 in the internet namespace"
  in_ns internet nsd -c "$d/nsd.conf" </dev/null >>"$LAB_DIR/logs/internet-start.log" 2>&1 ||
    die "nsd did not start; see $LAB_DIR/logs/internet-start.log and internet-dns.log"
  wait_until 15 "NSD listening on $LAB_DNS_IP:53" dns_answers
}

dns_answers() {
  [[ $LAB_MODE == docker ]] && return 0
  ip netns exec internet ss -Hlun "( sport = :53 )" | grep -q "$LAB_DNS_IP:53"
}

dns_up() {
  step "starting the lab DNS (NSD, authoritative for corp.test provider.test internet.test newdomain.test)"
  write_zones
  write_nsd_conf
  start_dns
}

# An expired certificate for mx.corp.test, signed by the lab CA (openssl ca sets past dates).
make_expired_cert() {
  local ca=$LAB_DIR/ca out=$LAB_DIR/ca/expired d
  d=$(mktemp -d)
  printf '[ca]\ndefault_ca = lab\n[lab]\ndatabase = %s/index\nnew_certs_dir = %s\nserial = %s/serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = none\n[any]\ncommonName = supplied\n[ext]\nsubjectAltName = DNS:mx.corp.test,IP:198.18.1.2\nextendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n' "$d" "$d" "$d" >"$d/ca.cnf"
  : >"$d/index"
  echo 1000 >"$d/serial"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=mx.corp.test" -keyout "$out.key" -out "$d/req.csr" 2>/dev/null
  openssl ca -batch -config "$d/ca.cnf" -extensions ext -cert "$ca/ca.pem" -keyfile "$ca/ca.key" \
    -startdate 20240101000000Z -enddate 20240201000000Z -notext -in "$d/req.csr" -out "$out.pem" 2>/dev/null ||
    die "openssl ca could not make the expired certificate"
  chmod 0600 "$out.key"
  rm -rf "$d"
}

# A valid lab certificate for wrong.corp.test only.
make_wrong_name_cert() {
  local ca=$LAB_DIR/ca out=$LAB_DIR/ca/wrong-name
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/O=flowtest lab/CN=wrong.corp.test" -keyout "$out.key" -out "$out.csr" 2>/dev/null
  openssl x509 -req -in "$out.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial -days 30 \
    -extfile <(printf 'subjectAltName=DNS:wrong.corp.test\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n') \
    -out "$out.pem" 2>/dev/null
  rm -f "$out.csr" "$ca/ca.srl"
  chmod 0600 "$out.key"
}

# apply_doctor_fault NAME: the faults of this file; returns 1 for a name it does not know.
apply_doctor_fault() {
  case $1 in
    cert-expired)
      make_expired_cert
      pf ec2 postconf -c "$(pf_dir ec2)" -e "smtpd_tls_cert_file = $LAB_DIR/ca/expired.pem" \
        "smtpd_tls_key_file = $LAB_DIR/ca/expired.key"
      backdate "$(pf_dir ec2)/main.cf"
      reload_postfix ec2
      ;;
    cert-wrong-name)
      make_wrong_name_cert
      printf '# fault cert-wrong-name: a certificate for another host\nssl_cert = <%s\nssl_key = <%s\n' \
        "$LAB_DIR/ca/wrong-name.pem" "$LAB_DIR/ca/wrong-name.key" >"$LAB_DIR/dell/dovecot/fault.conf"
      reload_dovecot dell
      ;;
    mx-missing)
      write_zones mx-missing
      start_dns
      ;;
    *) return 1 ;;
  esac
}

# heal_doctor: the healthy zones and DNS server; the certificates heal with the hosts' configs.
heal_doctor() {
  # The Docker lab has no internet namespace to serve DNS from: nothing to heal there.
  [[ $LAB_MODE == netns ]] || return 0
  rm -f "$LAB_DIR/ca/expired.pem" "$LAB_DIR/ca/expired.key" "$LAB_DIR/ca/wrong-name.pem" "$LAB_DIR/ca/wrong-name.key"
  write_zones
  write_nsd_conf
  start_dns
}
