/*
 * srv_selfcert: the listener self-check's client identity under mTLS. A fresh P-256 key and a
 * self-signed end-entity certificate for it (CA:FALSE, clientAuth), made in memory at start
 * and never written anywhere. The transport adds the certificate to the client CAs its
 * listener trusts, so the self-check's Health/Check passes the mTLS gate; nobody else can
 * present it without this process's memory. Transport-private; any thread.
 */
#ifndef SRV_TRANSPORT_SELFCERT_H
#define SRV_TRANSPORT_SELFCERT_H

/* 0 and two NUL-terminated PEM strings (the caller frees both; wipe the key first), or -1
 * with both NULL. */
int srv_selfcert_create(char **cert_pem, char **key_pem);

#endif
