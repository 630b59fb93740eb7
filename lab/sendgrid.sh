# shellcheck shell=bash
# lab/sendgrid.sh: the lab's SendGrid v3 API stand-in (sourced by lab/up after lab/lib.sh).
#
# Owns: its API key (secrets/sendgrid-api-key), starting `flowtest-lab-sendgrid` in the `internet`
# namespace on 127.0.0.1:8025 (where flowtest runs, see lab/run) relaying to mx.corp.test:25 with
# the lab CA, its log (logs/sendgrid-api.log). Stopping is teardown's: it ends every process in the
# lab namespaces. Does not own: the stand-in's behaviour (src/bin/flowtest-lab-sendgrid).

SENDGRID_LISTEN=127.0.0.1:8025

start_sendgrid() {
  step "starting the SendGrid API stand-in in internet ($SENDGRID_LISTEN)"
  (umask 077 && echo "SG.lab.$(openssl rand -hex 24)" >"$LAB_DIR/secrets/sendgrid-api-key")
  local bin
  bin=$(lab_bin flowtest-lab-sendgrid)
  ns_prefix internet
  nohup "${NS_PREFIX[@]}" "$bin" --listen "$SENDGRID_LISTEN" \
    --key-file "$LAB_DIR/secrets/sendgrid-api-key" \
    --relay-to mx.corp.test:25 --relay-ca "$LAB_DIR/ca/ca.pem" --helo o1.sendgrid.test \
    >>"$LAB_DIR/logs/sendgrid-api.log" 2>&1 </dev/null &
  wait_until 10 "the SendGrid API stand-in to listen" port_open internet "${SENDGRID_LISTEN%:*}" "${SENDGRID_LISTEN#*:}"
}
