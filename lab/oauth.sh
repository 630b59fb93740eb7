# shellcheck shell=bash
# lab/oauth.sh: OAuth 2 in the lab (sourced by lab/lib.sh, never run).
#
# Owns: the access tokens the lab issues (one per mail user: secrets/oauth/<user>, and the
# stand-in's list oauth/tokens), starting `flowtest-lab-oauth` (the token introspection stand-in)
# in the `internet` namespace on 198.18.1.1:8026 (named oauth.internet.test in the lab DNS; every
# lab host's Dovecot asks it through its `oauth2` passdb), its log (logs/oauth-introspection.log),
# and the fault token-expired (every token reported inactive until lab/heal). Stopping is
# teardown's. Does not own: Dovecot's oauth2 settings (lab/conf/common/dovecot-oauth2.conf.ext.in)
# or the stand-in's behaviour (src/bin/flowtest-lab-oauth).

LAB_OAUTH_IP=198.18.1.1
LAB_OAUTH_PORT=8026

oauth_dir() {
  echo "$LAB_DIR/oauth"
}

# gen_oauth_tokens: a random access token per mail user, shaped like Google's (ya29.…).
gen_oauth_tokens() {
  step "issuing an OAuth 2 access token per mail user"
  local d u t
  d=$(oauth_dir)
  install -d -m 0700 "$d" "$LAB_DIR/secrets/oauth"
  (umask 077 && printf '# flowtest lab: issued access tokens (TOKEN USER)\n' >"$d/tokens")
  for u in "${DELL_USERS[@]}" "${PROVIDER_USERS[@]}"; do
    t="ya29.lab.$(openssl rand -hex 24)"
    (umask 077 && echo "$t" >"$LAB_DIR/secrets/oauth/$u")
    echo "$t $u" >>"$d/tokens"
  done
}

start_oauth() {
  step "starting the OAuth 2 introspection stand-in in internet ($LAB_OAUTH_IP:$LAB_OAUTH_PORT)"
  local bin
  bin=$(lab_bin flowtest-lab-oauth)
  ns_prefix internet
  nohup "${NS_PREFIX[@]}" "$bin" --listen "$LAB_OAUTH_IP:$LAB_OAUTH_PORT" \
    --tokens "$(oauth_dir)/tokens" --expired-flag "$(oauth_dir)/expired" \
    >>"$LAB_DIR/logs/oauth-introspection.log" 2>&1 </dev/null &
  wait_until 10 "the OAuth 2 introspection stand-in to listen" port_open internet "$LAB_OAUTH_IP" "$LAB_OAUTH_PORT"
}

# apply_oauth_fault NAME: the faults of this file; returns 1 for a name it does not know.
apply_oauth_fault() {
  case $1 in
    token-expired)
      # The stand-in reads the flag on every introspection; Dovecot caches no auth result
      # (auth_cache_size = 0), so the next login already sees the token expired.
      : >"$(oauth_dir)/expired"
      ;;
    *) return 1 ;;
  esac
}

heal_oauth() {
  rm -f "$(oauth_dir)/expired"
}
