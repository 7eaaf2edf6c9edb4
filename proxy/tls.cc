#include "proxy/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace hashgate {
namespace {

std::string openssl_errors() {
  std::string s;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s.empty() ? "unknown OpenSSL error" : s;
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string pin_hex(const Sha256Pin& p) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : p) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

}  // namespace

Sha256Pin spki_sha256(X509* cert) {
  Sha256Pin out{};
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
  if (len > 0) {
    unsigned int n = 0;
    EVP_Digest(der, size_t(len), out.data(), &n, EVP_sha256(), nullptr);
  }
  OPENSSL_free(der);
  return out;
}

std::shared_ptr<TlsContext> TlsContext::client(const TlsClientOptions& o, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = openssl_errors();
    return nullptr;
  }
  std::shared_ptr<TlsContext> c(new TlsContext(ctx, false));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  c->verify_ = o.verify;
  c->pins_ = o.pins;
  if (o.verify) {
    int ok = o.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                               : SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr);
    if (ok != 1) {
      error = (o.ca_file.empty() ? std::string("cannot load the system's CA certificates")
                                 : "cannot load CA file " + o.ca_file) +
              ": " + openssl_errors();
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return c;
}

std::shared_ptr<TlsContext> TlsContext::server(const std::string& cert_file, const std::string& key_file,
                                               std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = openssl_errors();
    return nullptr;
  }
  std::shared_ptr<TlsContext> c(new TlsContext(ctx, true));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Miners reconnect often; no session cache state grows per peer here.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    error = "cannot load certificate " + cert_file + ": " + openssl_errors();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load key " + key_file + ": " + openssl_errors();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "key " + key_file + " does not match certificate " + cert_file;
    ERR_clear_error();
    return nullptr;
  }
  return c;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsChannel::TlsChannel(std::shared_ptr<TlsContext> ctx, const std::string& host) : ctx_(std::move(ctx)) {
  ssl_ = SSL_new(ctx_->get());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);  // an empty input is "try again", not EOF
  SSL_set_bio(ssl_, in_, out_);     // the SSL owns both BIOs now
  if (ctx_->is_server()) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!host.empty() && !is_ip_address(host)) SSL_set_tlsext_host_name(ssl_, host.c_str());
  if (ctx_->verify() && !host.empty()) {
    if (is_ip_address(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
    } else {
      SSL_set1_host(ssl_, host.c_str());
    }
  }
}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

void TlsChannel::start() {
  std::string ignored;
  advance(ignored);
}

bool TlsChannel::fail(std::string what) {
  if (error_.empty()) error_ = std::move(what);
  return false;
}

bool TlsChannel::check_pins() {
  if (ctx_->pins().empty()) return true;
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_);
  X509* leaf = SSL_get0_peer_certificate(ssl_);
  if (!leaf) return fail("certificate pin check failed: the server sent no certificate");
  auto pinned = [&](X509* c) {
    Sha256Pin h = spki_sha256(c);
    for (const Sha256Pin& p : ctx_->pins())
      if (p == h) return true;
    return false;
  };
  if (pinned(leaf)) return true;
  for (int i = 0; chain && i < sk_X509_num(chain); ++i)
    if (pinned(sk_X509_value(chain, i))) return true;
  return fail("certificate pin mismatch: the server's key has sha256 " + pin_hex(spki_sha256(leaf)) +
              ", which is not pinned");
}

bool TlsChannel::advance(std::string& plain) {
  if (!error_.empty()) return false;
  if (!established_) {
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      int e = SSL_get_error(ssl_, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
      long v = SSL_get_verify_result(ssl_);
      if (v != X509_V_OK) return fail(std::string("certificate verify failed: ") + X509_verify_cert_error_string(v));
      return fail(openssl_errors());
    }
    if (!check_pins()) return false;
    established_ = true;
    just_established_ = true;
    if (!pending_plain_.empty()) {
      std::string p;
      p.swap(pending_plain_);
      if (!send(p)) return false;
    }
  }
  char buf[16384];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, size_t(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (e == SSL_ERROR_ZERO_RETURN) return fail("peer closed the TLS session");
    return fail("TLS read failed: " + openssl_errors());
  }
}

bool TlsChannel::receive(std::string_view cipher, std::string& plain) {
  if (!error_.empty()) return false;
  if (!cipher.empty() && BIO_write(in_, cipher.data(), int(cipher.size())) != int(cipher.size()))
    return fail("TLS buffer write failed");
  return advance(plain);
}

bool TlsChannel::send(std::string_view plain) {
  if (!error_.empty()) return false;
  if (!established_) {
    pending_plain_.append(plain);
    return true;
  }
  while (!plain.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, plain.data(), int(std::min<size_t>(plain.size(), 1 << 20)));
    if (n <= 0) return fail("TLS write failed: " + openssl_errors());
    plain.remove_prefix(size_t(n));
  }
  return true;
}

bool TlsChannel::has_output() const { return BIO_ctrl_pending(out_) > 0; }

void TlsChannel::take_output(std::string& out) {
  size_t n = BIO_ctrl_pending(out_);
  if (n == 0) return;
  size_t at = out.size();
  out.resize(at + n);
  int got = BIO_read(out_, out.data() + at, int(n));
  out.resize(at + size_t(std::max(got, 0)));
}

std::string TlsChannel::protocol() const { return SSL_get_version(ssl_); }

}  // namespace hashgate
