// mqtt::write_certificates and certificate Credentials: the directory's layout and modes, every certificate
// chains to the fleet CA with the role it is for (a car's key cannot sign or serve), the broker config lines,
// and the bridge's tag (stable for one directory, different for another).
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "mqtt/certificates.h"
#include "mqtt/credentials.h"
#include "support/temp_dir.h"

using namespace fleettwin::mqtt;

namespace {

std::shared_ptr<X509> read_cert(const std::filesystem::path& p) {
  FILE* f = std::fopen(p.c_str(), "r");
  if (!f) return nullptr;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return {x, X509_free};
}

std::string common_name(X509* x) {
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
  return cn;
}

/// Verifies `cert` against the CA alone, for `purpose` (X509_PURPOSE_SSL_CLIENT / _SERVER).
bool chains_to(X509* ca, X509* cert, int purpose) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  return X509_verify_cert(ctx.get()) == 1;
}

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

struct Certificates : ::testing::Test {
  fleettwin::testing::TempDir tmp{"certs-unit"};
  CertificatePaths paths{tmp.path() / "fleet"};
  void write(std::size_t cars) {
    CertificateRequest r;
    r.cars = cars;
    r.car_id = [](std::size_t i) { return "car-" + std::to_string(i); };
    r.acl_template = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/mosquitto/acl";
    r.threads = 2;
    write_certificates(paths.dir.string(), r);
  }
};

TEST_F(Certificates, EveryIdentityChainsToTheFleetCaWithItsRole) {
  write(3);
  const auto ca = read_cert(paths.ca_crt());
  ASSERT_TRUE(ca);
  for (int i = 0; i < 3; ++i) {
    const auto car = read_cert(paths.car_crt("car-" + std::to_string(i)));
    ASSERT_TRUE(car) << i;
    EXPECT_EQ(common_name(car.get()), "car-" + std::to_string(i));
    EXPECT_TRUE(chains_to(ca.get(), car.get(), X509_PURPOSE_SSL_CLIENT));
    EXPECT_FALSE(chains_to(ca.get(), car.get(), X509_PURPOSE_SSL_SERVER)) << "a car's key cannot serve";
    EXPECT_EQ(X509_check_ca(car.get()), 0) << "a car's key cannot sign certificates";
    EXPECT_EQ(mode_of(paths.car_key("car-" + std::to_string(i))), 0600u);
  }
  const auto bridge = read_cert(paths.bridge_crt());
  EXPECT_EQ(common_name(bridge.get()), kBridgeUser);
  EXPECT_TRUE(chains_to(ca.get(), bridge.get(), X509_PURPOSE_SSL_CLIENT));
  const auto server = read_cert(paths.server_crt());
  EXPECT_TRUE(chains_to(ca.get(), server.get(), X509_PURPOSE_SSL_SERVER));
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(mode_of(paths.ca_key()), 0600u);
  EXPECT_EQ(mode_of(paths.ca_key().parent_path()), 0700u);
  EXPECT_EQ(mode_of(paths.bridge_key()), 0600u);
}

TEST_F(Certificates, CredentialsOfACertificateDirectory) {
  write(1);
  const auto c = Credentials::load(paths.dir.string());
  ASSERT_TRUE(c.certificates());
  const auto car = c.car_tls("car-0", {});
  EXPECT_EQ(car.ca_file, paths.ca_crt().string());
  EXPECT_EQ(car.cert_file, paths.car_crt("car-0").string());
  EXPECT_TRUE(car.identity_per_connection) << "one TLS context per process, not per car";
  TlsOptions own_ca;
  own_ca.ca_file = "/etc/ssl/broker-ca.pem";
  EXPECT_EQ(c.bridge_tls(own_ca).ca_file, own_ca.ca_file);
  EXPECT_EQ(c.bridge_tls({}).key_file, paths.bridge_key().string());
  const auto conf = broker_auth_config(c);
  for (const char* line : {"require_certificate true", "use_identity_as_username true",
                           "allow_anonymous false", "acl_file ", "cafile ", "certfile ", "keyfile "})
    EXPECT_NE(conf.find(line), std::string::npos) << line;
  EXPECT_EQ(conf.find("password_file"), std::string::npos);
}

TEST_F(Certificates, TheBridgeTagIsStableAndSecretToItsDirectory) {
  write(1);
  const auto a = Credentials::load(paths.dir.string());
  EXPECT_EQ(a.bridge_tag(), Credentials::load(paths.dir.string()).bridge_tag());
  EXPECT_EQ(a.bridge_tag().size(), 16u);
  const CertificatePaths other{tmp.path() / "other"};
  CertificateRequest r;
  r.cars = 1;
  r.car_id = [](std::size_t) { return std::string("car-0"); };
  r.acl_template = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/mosquitto/acl";
  write_certificates(other.dir.string(), r);
  EXPECT_NE(a.bridge_tag(), Credentials::load(other.dir.string()).bridge_tag());
}

TEST(CarIds, AreSafeNamesAndNeverTheBridge) {
  for (const char* ok : {"car-00001", "VIN1HGCM82633A004352", "fleet_a.car-7"})
    EXPECT_EQ(car_id_problem(ok), "") << ok;
  for (const char* bad :
       {"", "fleettwin-bridge", "fleettwin-bridge2", "a/b", "a+b", "#", "../x", ".hidden", "a b"})
    EXPECT_NE(car_id_problem(bad), "") << bad;
  EXPECT_NE(car_id_problem(std::string(65, 'a')), "");
}

}  // namespace
