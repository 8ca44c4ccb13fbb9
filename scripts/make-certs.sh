#!/usr/bin/env bash
# Throwaway PKI for psp-gateway's mutual TLS (README "Security: TLS and authorisation"), with the openssl
# command only. For tests and demos; a deployment uses its own CA the same way.
#
#   scripts/make-certs.sh DIR ca                      # DIR/ca.key, DIR/ca.crt (once per deployment)
#   scripts/make-certs.sh DIR host NAME SAN [SAN...]  # DIR/NAME.key, DIR/NAME.crt signed by DIR/ca.*
#
# SAN: "IP:192.168.100.1" or "DNS:gw1.example": must name the host of this gateway's gRPC address as its
# peers write it in their remote-grpc-address. EC P-256 keys, unencrypted, valid DAYS (default 2) days.
set -euo pipefail

dir=${1:?usage: $0 DIR ca | DIR host NAME SAN...}
what=${2:?usage: $0 DIR ca | DIR host NAME SAN...}
days=${DAYS:-2}
mkdir -p "$dir"
umask 077 # keys readable by their owner only

case "$what" in
  ca)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
      -subj "/CN=psp-gateway CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    ;;
  host)
    name=${3:?host NAME}
    shift 3
    (($#)) || { echo "$0: host $name: give at least one SAN (IP:... or DNS:...)" >&2; exit 2; }
    sans=$(IFS=,; echo "$*")
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
      -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n' \
      "$sans" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -days "$days" \
      -set_serial "0x$(openssl rand -hex 8)" -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    ;;
  *) echo "usage: $0 DIR ca | DIR host NAME SAN..." >&2; exit 2 ;;
esac
