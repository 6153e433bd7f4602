#include "mqtt/certificates.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "mqtt/credentials.h"

namespace fleettwin::mqtt {

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

[[noreturn]] void openssl_fail(const std::string& what) {
  const unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  throw std::runtime_error("certificates: " + what + ": " + buf);
}

/// Makes EC P-256 keys; one per thread (a context is not shared between threads). P-256 because it is fast
/// to generate (100,000 cars take seconds, RSA would take minutes) and every TLS stack in cars speaks it.
class KeyMaker {
 public:
  KeyMaker() : _ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)) {
    if (!_ctx || EVP_PKEY_keygen_init(_ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(_ctx.get(), "P-256") != 1)
      openssl_fail("EC key context");
  }
  KeyPtr make() {
    EVP_PKEY* key = nullptr;
    if (EVP_PKEY_generate(_ctx.get(), &key) != 1) openssl_fail("EC key generation");
    return KeyPtr(key);
  }

 private:
  KeyCtxPtr _ctx;
};

enum class Role : std::uint8_t { kCa, kServer, kClient };

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (!ext) openssl_fail("extension " + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) openssl_fail("adding extension " + value);
}

std::string subject_alt_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    in6_addr ip{};
    const bool is_ip =
        ::inet_pton(AF_INET, n.c_str(), &ip) == 1 || ::inet_pton(AF_INET6, n.c_str(), &ip) == 1;
    out += (out.empty() ? "" : ",") + std::string(is_ip ? "IP:" : "DNS:") + n;
  }
  return out;
}

void set_serial(X509* cert) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) openssl_fail("serial number");
  raw[0] &= 0x7f;  // positive, as RFC 5280 wants
  BIGNUM* bn = BN_bin2bn(raw, sizeof raw, nullptr);
  const bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  if (!ok) openssl_fail("serial number");
}

/// A certificate for `key` with CN `cn`, signed by `issuer` (null: self-signed, the CA). The role decides the
/// extensions: a client certificate cannot sign others nor serve, so a car's key is never more than a car.
CertPtr make_certificate(EVP_PKEY* key, const std::string& cn, Role role, X509* issuer, EVP_PKEY* issuer_key,
                         const std::vector<std::string>& sans, int days) {
  CertPtr cert(X509_new());
  if (!cert) openssl_fail("X509_new");
  X509* c = cert.get();
  X509_set_version(c, 2);  // v3
  set_serial(c);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);  // an hour of clock skew between machines
  X509_gmtime_adj(X509_getm_notAfter(c), static_cast<long>(days) * 24 * 3600);
  X509_set_pubkey(c, key);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("fleettwin"), -1,
                             -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                 -1, -1, 0) != 1)
    openssl_fail("subject CN " + cn);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
  add_extension(c, &ctx, NID_subject_key_identifier, "hash");
  if (role == Role::kCa) {
    add_extension(c, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_extension(c, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(c, &ctx, NID_authority_key_identifier, "keyid");
    add_extension(c, &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(c, &ctx, NID_key_usage, "critical,digitalSignature");
    add_extension(c, &ctx, NID_ext_key_usage, role == Role::kServer ? "serverAuth" : "clientAuth");
    if (role == Role::kServer) add_extension(c, &ctx, NID_subject_alt_name, subject_alt_names(sans));
  }
  if (X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) == 0) openssl_fail("signing " + cn);
  return cert;
}

void write_file(const std::filesystem::path& p, const std::string& text, mode_t mode) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + p.string());
  ::fchmod(fd, mode);  // an existing file keeps its old mode through O_CREAT
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot write " + p.string());
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw std::runtime_error("cannot write " + p.string());
}

std::string pem_of(X509* cert, EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  const bool ok = cert ? PEM_write_bio_X509(bio.get(), cert) == 1
                       : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (!ok) openssl_fail("PEM encoding");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(len)};
}

void write_pair(const std::filesystem::path& crt, const std::filesystem::path& key_path, X509* cert,
                EVP_PKEY* key) {
  write_file(key_path, pem_of(nullptr, key), 0600);
  write_file(crt, pem_of(cert, nullptr), 0644);
}

struct Ca {
  KeyPtr key;
  CertPtr cert;
};

/// The per-car loop of write_certificates: `threads` workers take car indexes from one counter; the calling
/// thread reports progress and rethrows the first failure.
void write_cars(const CertificatePaths& paths, const CertificateRequest& r, const Ca& ca) {
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr error;
  auto work = [&] {
    try {
      KeyMaker keys;
      for (std::size_t i = next++; i < r.cars && !failed; i = next++) {
        const std::string id = r.car_id(i);
        if (const auto problem = car_id_problem(id); !problem.empty())
          throw std::runtime_error(std::string("car id '").append(id).append("': ").append(problem));
        const auto key = keys.make();
        const auto cert =
            make_certificate(key.get(), id, Role::kClient, ca.cert.get(), ca.key.get(), {}, r.days);
        write_pair(paths.car_crt(id), paths.car_key(id), cert.get(), key.get());
        ++done;
      }
    } catch (...) {
      std::lock_guard lock(mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  const std::size_t n = r.threads ? r.threads : std::max(1U, std::thread::hardware_concurrency());
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < std::min(n, std::max<std::size_t>(r.cars, 1)); ++t) workers.emplace_back(work);
  while (done < r.cars && !failed) {
    if (r.progress) r.progress(done, r.cars);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
  if (r.progress) r.progress(r.cars, r.cars);
}

}  // namespace

std::filesystem::path CertificatePaths::car_crt(std::string_view car) const {
  return dir / "cars" / (std::string(car) + ".crt");
}

std::filesystem::path CertificatePaths::car_key(std::string_view car) const {
  return dir / "cars" / (std::string(car) + ".key");
}

bool CertificatePaths::present() const { return std::filesystem::is_regular_file(ca_crt()); }

std::string car_id_problem(std::string_view car) {
  if (car.empty() || car.size() > 64) return "a car id has 1 to 64 characters";
  for (const char ch : car) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '-' || ch == '_' || ch == '.';
    if (!ok) return "only letters, digits, '-', '_' and '.' (it is a CN, an ACL user and a file name)";
  }
  if (car.front() == '.') return "a car id does not start with '.'";
  if (car.substr(0, std::string_view(kBridgeUser).size()) == kBridgeUser)
    return std::string("the bridge's identity (") + kBridgeUser + ") is not a car's";
  return {};
}

void write_certificates(const std::string& dir, const CertificateRequest& r) {
  const CertificatePaths paths{std::filesystem::absolute(dir)};
  std::filesystem::create_directories(paths.dir / "cars");
  std::filesystem::create_directories(paths.dir / "private");
  std::filesystem::permissions(paths.dir / "private", std::filesystem::perms::owner_all);
  KeyMaker keys;
  Ca ca{keys.make(), nullptr};
  ca.cert =
      make_certificate(ca.key.get(), "fleettwin fleet CA", Role::kCa, nullptr, nullptr, {}, r.days + 365);
  write_pair(paths.ca_crt(), paths.ca_key(), ca.cert.get(), ca.key.get());
  const auto server_key = keys.make();
  const auto server =
      make_certificate(server_key.get(), r.server_names.empty() ? "broker" : r.server_names[0], Role::kServer,
                       ca.cert.get(), ca.key.get(), r.server_names, r.days);
  write_pair(paths.server_crt(), paths.server_key(), server.get(), server_key.get());
  const auto bridge_key = keys.make();
  const auto bridge =
      make_certificate(bridge_key.get(), kBridgeUser, Role::kClient, ca.cert.get(), ca.key.get(), {}, r.days);
  write_pair(paths.bridge_crt(), paths.bridge_key(), bridge.get(), bridge_key.get());
  std::filesystem::copy_file(r.acl_template, paths.dir / "acl",
                             std::filesystem::copy_options::overwrite_existing);
  write_file(paths.dir / "mosquitto.conf", broker_auth_config(Credentials::load(paths.dir.string())), 0644);
  write_cars(paths, r, ca);
}

}  // namespace fleettwin::mqtt
