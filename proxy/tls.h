// TLS over memory BIOs: OpenSSL never touches a socket. The owner moves
// ciphertext between the channel and its libuv stream, so TLS and plain TCP
// share one I/O path (reads, writes, closes) and one set of callbacks.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hashgate {

using Sha256Pin = std::array<uint8_t, 32>;

struct TlsClientOptions {
  std::string ca_file;            // empty: the system's CAs
  bool verify = true;             // false only with pins (the config refuses otherwise)
  std::vector<Sha256Pin> pins;    // SHA-256 of a SubjectPublicKeyInfo in the chain
};

// An SSL_CTX, made once per pool or listener and shared by its connections.
class TlsContext {
 public:
  static std::shared_ptr<TlsContext> client(const TlsClientOptions& o, std::string& error);
  static std::shared_ptr<TlsContext> server(const std::string& cert_file, const std::string& key_file,
                                            std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  bool is_server() const { return server_; }
  bool verify() const { return verify_; }
  const std::vector<Sha256Pin>& pins() const { return pins_; }

 private:
  TlsContext(SSL_CTX* ctx, bool server) : ctx_(ctx), server_(server) {}
  SSL_CTX* ctx_;
  bool server_;
  bool verify_ = false;
  std::vector<Sha256Pin> pins_;
};

// One connection's TLS state. Not thread-safe; used on the loop thread.
class TlsChannel {
 public:
  // `host` is the name to send as SNI and to check the certificate against
  // (a client channel; an IP address is checked as one and sent no SNI).
  TlsChannel(std::shared_ptr<TlsContext> ctx, const std::string& host);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // A client starts the handshake; its first flight is then in take_output().
  void start();
  // Ciphertext read from the peer; decrypted bytes are appended to `plain`.
  // False on a fatal error (error() says what): the connection must close.
  bool receive(std::string_view cipher, std::string& plain);
  // Plaintext to send; held until the handshake is done. False on error.
  bool send(std::string_view plain);
  // Ciphertext waiting for the socket (handshake records or data).
  bool has_output() const;
  void take_output(std::string& out);

  bool established() const { return established_; }
  // Set by receive() when the handshake completed during that call.
  bool just_established() {
    bool j = just_established_;
    just_established_ = false;
    return j;
  }
  const std::string& error() const { return error_; }
  std::string protocol() const;  // e.g. "TLSv1.3", after the handshake

 private:
  bool advance(std::string& plain);
  bool fail(std::string what);
  bool check_pins();

  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // the peer's ciphertext, for OpenSSL to read
  BIO* out_ = nullptr;  // OpenSSL's ciphertext, for the socket
  std::string pending_plain_;
  std::string error_;
  bool established_ = false;
  bool just_established_ = false;
};

// The SHA-256 of a certificate's SubjectPublicKeyInfo, as pinned.
Sha256Pin spki_sha256(X509* cert);

}  // namespace hashgate
