#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Make a throw-away x509 PKI for the agents' mutual TLS with GnuTLS's
# certtool (Debian: gnutls-bin), laid out as libvirt lays out its own TLS
# files (libvirt's kbase "TLS x509 certificates"; docs/virtcocod.rst,
# "Trust between agents"). Nothing here is committed: the tests and the lab
# run it at test time into a fresh directory.
#
#   tests/cocotlsgen.sh DIR
#
# DIR/ca/{cacert,cakey}.pem     the CA every good host certificate comes from
# DIR/ca2/{cacert,cakey}.pem    a second CA that nobody trusts
# DIR/HOST/cacert.pem           the CA HOST trusts (tls_ca_cert)
# DIR/HOST/servercert.pem       tls_server_cert (tls_www_server)
# DIR/HOST/private/serverkey.pem  tls_server_key (mode 0600)
# DIR/HOST/clientcert.pem       tls_client_cert (tls_www_client)
# DIR/HOST/private/clientkey.pem  tls_client_key (mode 0600)
# DIR/HOST/cacrl.pem            tls_ca_crl
#
# HOST is one of
#   hostA     CA, names hostA and 10.97.0.1 (the lab's host A), RSA keys
#   hostB     CA, names hostB and 10.97.0.2 (the lab's host B), ECDSA keys
#   otherca   ca2, names hostB and 10.97.0.2: a good certificate of another CA
#   expired   CA, names hostB and 10.97.0.2, valid 2020-01-01 to 2021-01-01
#   notyet    CA, names hostB and 10.97.0.2, valid from 2099-01-01
#   cnonly    CA, no subjectAltName, CN hostC (what libvirt's client template
#             makes): the identity falls back to the CN
#   weak      CA, names hostB and 10.97.0.2, ECDSA keys on P-224 (no TLS 1.3
#             signature scheme exists for it)
#   revoked   CA, names hostB and 10.97.0.2, both certificates revoked
#   local     CA, names localhost and 127.0.0.1: the agents of the unit
#             tests on the loopback address
#   localother  ca2, names localhost and 127.0.0.1: a good certificate of
#             another CA on the loopback address
#
# DIR/ca/cacrl.pem (copied to DIR/HOST/cacrl.pem, tls_ca_crl) revokes
# revoked's certificates; DIR/ca2/cacrl.pem is the other CA's empty list.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
if ! command -v certtool >/dev/null 2>&1; then
    echo "$0: certtool is missing (Debian: apt-get install gnutls-bin)" >&2
    exit 1
fi
dir=$1
umask 077
mkdir -p "$dir"

# key FILE TYPE: a private key of TYPE (rsa: 2048 bits, ecdsa: P-256, both
# usable in TLS 1.3; p224: ECDSA on P-224, which TLS 1.3 cannot use), PEM.
key() {
    case $2 in
    rsa) type=rsa size="--bits=2048" ;;
    p224) type=ecdsa size="--curve=secp224r1" ;;
    *) type=ecdsa size="--curve=secp256r1" ;;
    esac
    certtool --generate-privkey --key-type="$type" "$size" \
        --no-text --outfile "$1" 2>/dev/null
}

# ca NAME CN
ca() {
    mkdir -p "$dir/$1"
    key "$dir/$1/cakey.pem" ecdsa
    cat > "$dir/$1/ca.info" <<EOF
cn = $2
ca
cert_signing_key
expiration_days = 3650
EOF
    certtool --generate-self-signed --no-text \
        --load-privkey "$dir/$1/cakey.pem" --template "$dir/$1/ca.info" \
        --outfile "$dir/$1/cacert.pem" 2>/dev/null
}

# host HOST CA KEYTYPE CN DNS IP DATES
# DATES: "" for 'valid for a year from now', or certtool template lines.
host() {
    h=$dir/$1
    mkdir -p "$h/private"
    cp "$dir/$2/cacert.pem" "$h/cacert.pem"
    if [ -n "$5" ]; then
        names="dns_name = $5
ip_address = $6"
    else
        names=""
    fi
    dates=${7:-"expiration_days = 365"}
    for role in server client; do
        key "$h/private/${role}key.pem" "$3"
        cat > "$h/$role.info" <<EOF
organization = libvirt-coco tests
cn = $4
$names
tls_www_$role
encryption_key
signing_key
$dates
EOF
        certtool --generate-certificate --no-text \
            --load-privkey "$h/private/${role}key.pem" \
            --load-ca-certificate "$dir/$2/cacert.pem" \
            --load-ca-privkey "$dir/$2/cakey.pem" \
            --template "$h/$role.info" --outfile "$h/${role}cert.pem" \
            2>/dev/null
        rm -f "$h/$role.info"
    done
    chmod 600 "$h/private/serverkey.pem" "$h/private/clientkey.pem"
    chmod 644 "$h/cacert.pem" "$h/servercert.pem" "$h/clientcert.pem"
}

ca ca "libvirt-coco test CA"
ca ca2 "libvirt-coco other CA"
host hostA ca rsa hostA hostA 10.97.0.1 ""
host hostB ca ecdsa hostB hostB 10.97.0.2 ""
host otherca ca2 ecdsa hostB hostB 10.97.0.2 ""
host expired ca ecdsa hostB hostB 10.97.0.2 'activation_date = "2020-01-01 00:00:00"
expiration_date = "2021-01-01 00:00:00"'
host notyet ca ecdsa hostB hostB 10.97.0.2 'activation_date = "2099-01-01 00:00:00"
expiration_date = "2100-01-01 00:00:00"'
host cnonly ca ecdsa hostC "" "" ""
# the agents of the unit tests, on the loopback address
host local ca ecdsa localhost localhost 127.0.0.1 ""
host localother ca2 ecdsa localhost localhost 127.0.0.1 ""
host weak ca p224 hostB hostB 10.97.0.2 ""
host revoked ca ecdsa hostB hostB 10.97.0.2 ""

# crl CA OUT DATES [CERTFILE]: the revocation list of CA (listing
# CERTFILE's certificates) in DIR/CA/OUT.
crl() {
    printf '%s\ncrl_number = 1\n' "$3" > "$dir/$1/crl.info"
    certtool --generate-crl --no-text \
        --load-ca-privkey "$dir/$1/cakey.pem" \
        --load-ca-certificate "$dir/$1/cacert.pem" \
        ${4:+--load-certificate "$4"} --template "$dir/$1/crl.info" \
        --outfile "$dir/$1/$2" 2>/dev/null
    rm -f "$dir/$1/crl.info"
    chmod 644 "$dir/$1/$2"
}
cat "$dir/revoked/servercert.pem" "$dir/revoked/clientcert.pem" \
    > "$dir/ca/revoked.pem"
crl ca cacrl.pem "crl_next_update = 365" "$dir/ca/revoked.pem"
crl ca oldcrl.pem 'crl_this_update_date = "2020-01-01 00:00:00"
crl_next_update_date = "2021-01-01 00:00:00"'
crl ca2 cacrl.pem "crl_next_update = 365"
rm -f "$dir/ca/revoked.pem"
for h in hostA hostB expired notyet cnonly weak revoked; do
    cp "$dir/ca/cacrl.pem" "$dir/$h/cacrl.pem"
done
cp "$dir/ca2/cacrl.pem" "$dir/otherca/cacrl.pem"
rm -f "$dir/ca/ca.info" "$dir/ca2/ca.info"
