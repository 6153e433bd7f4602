#include "mqtt/mosquitto_client.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <stdexcept>

namespace fleettwin::mqtt {

namespace {

void init_library_once() {
  // mosquitto_lib_init is not thread-safe; a function-local static runs it exactly once.
  static const int kInitRc = mosquitto_lib_init();
  (void)kInitRc;
}

std::string error_text(int rc) { return mosquitto_strerror(rc); }

}  // namespace

struct MosquittoCallbacks {
  static void on_connect(struct mosquitto*, void* obj, int rc, int, const mosquitto_property*) {
    auto* self = static_cast<MosquittoClient*>(obj);
    std::vector<std::pair<std::string, int>> subs;
    {
      std::lock_guard lock(self->_mu);
      self->_connack = rc;
      self->_connected = rc == 0;
      subs = self->_subscriptions;
    }
    self->_cv.notify_all();
    if (rc != 0) return;
    for (const auto& [filter, qos] : subs)
      mosquitto_subscribe_v5(self->_mosq, nullptr, filter.c_str(), qos, 0, nullptr);
  }
  static void on_disconnect(struct mosquitto*, void* obj, int, const mosquitto_property*) {
    auto* self = static_cast<MosquittoClient*>(obj);
    std::lock_guard lock(self->_mu);
    self->_connected = false;
  }
  static void on_publish(struct mosquitto*, void* obj, int mid, int, const mosquitto_property*) {
    auto* self = static_cast<MosquittoClient*>(obj);
    {
      std::lock_guard lock(self->_mu);
      self->_unacked.erase(mid);
    }
    self->_cv.notify_all();
  }
  static void on_message(struct mosquitto*, void* obj, const struct mosquitto_message* m,
                         const mosquitto_property*) {
    auto* self = static_cast<MosquittoClient*>(obj);
    MosquittoClient::MessageCallback cb;
    {
      std::lock_guard lock(self->_mu);
      cb = self->_on_message;
    }
    if (cb)
      cb(m->topic,
         std::string_view(static_cast<const char*>(m->payload), static_cast<std::size_t>(m->payloadlen)));
  }
};

MosquittoClient::MosquittoClient(MosquittoOptions options) : _options(std::move(options)) {
  init_library_once();
  const bool clean = _options.client_id.empty() || _options.clean_session;
  _mosq = mosquitto_new(_options.client_id.empty() ? nullptr : _options.client_id.c_str(), clean, this);
  if (!_mosq) throw std::runtime_error("mosquitto_new failed");
  mosquitto_int_option(_mosq, MOSQ_OPT_PROTOCOL_VERSION, _options.v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  if (_options.username)
    mosquitto_username_pw_set(_mosq, _options.username->c_str(),
                              _options.password ? _options.password->c_str() : nullptr);
  if (!_options.tls.ca_file.empty()) {
    const int rc =
        mosquitto_tls_set(_mosq, _options.tls.ca_file.c_str(), nullptr,
                          _options.tls.cert_file.empty() ? nullptr : _options.tls.cert_file.c_str(),
                          _options.tls.key_file.empty() ? nullptr : _options.tls.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("TLS setup: " + error_text(rc));
    mosquitto_tls_insecure_set(_mosq, _options.tls.insecure);
  }
  // Reconnect backoff: 1 s doubling to 30 s (libmosquitto's exponential mode).
  mosquitto_reconnect_delay_set(_mosq, 1, 30, true);
  mosquitto_connect_v5_callback_set(_mosq, &MosquittoCallbacks::on_connect);
  mosquitto_disconnect_v5_callback_set(_mosq, &MosquittoCallbacks::on_disconnect);
  mosquitto_publish_v5_callback_set(_mosq, &MosquittoCallbacks::on_publish);
  mosquitto_message_v5_callback_set(_mosq, &MosquittoCallbacks::on_message);
}

MosquittoClient::~MosquittoClient() {
  disconnect();
  if (_loop_started) mosquitto_loop_stop(_mosq, true);
  mosquitto_destroy(_mosq);
}

void MosquittoClient::connect(std::chrono::milliseconds timeout) {
  const std::string where = _options.host + ":" + std::to_string(_options.port);
  int rc = mosquitto_connect_bind_v5(_mosq, _options.host.c_str(), _options.port, _options.keepalive_s,
                                     nullptr, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("MQTT connect to " + where + ": " + error_text(rc));
  rc = mosquitto_loop_start(_mosq);
  if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("MQTT network thread: " + error_text(rc));
  _loop_started = true;
  std::unique_lock lock(_mu);
  if (!_cv.wait_for(lock, timeout, [&] { return _connack >= 0; }))
    throw std::runtime_error("MQTT connect to " + where + ": no CONNACK");
  if (_connack != 0)
    throw std::runtime_error("MQTT connect to " + where + " refused: " + mosquitto_reason_string(_connack));
}

void MosquittoClient::subscribe(const std::string& filter, int qos, MessageCallback on_message) {
  bool now = false;
  {
    std::lock_guard lock(_mu);
    _subscriptions.emplace_back(filter, qos);
    _on_message = std::move(on_message);
    now = _connected;
  }
  if (now) mosquitto_subscribe_v5(_mosq, nullptr, filter.c_str(), qos, 0, nullptr);
}

int MosquittoClient::publish(std::string_view topic, std::string_view payload, int qos,
                             std::uint32_t expiry_s) {
  mosquitto_property* props = nullptr;
  if (expiry_s > 0 && _options.v5)
    mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, expiry_s);
  int mid = 0;
  // Hold the lock across the call so the PUBACK callback cannot erase `mid` before it is recorded.
  std::lock_guard lock(_mu);
  const int rc = mosquitto_publish_v5(_mosq, &mid, std::string(topic).c_str(),
                                      static_cast<int>(payload.size()), payload.data(), qos, false, props);
  mosquitto_property_free_all(&props);
  // NO_CONN: libmosquitto queues the message and sends it after the reconnect.
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
    throw std::runtime_error("MQTT publish to " + std::string(topic) + ": " + error_text(rc));
  if (qos > 0) _unacked.insert(mid);
  return mid;
}

bool MosquittoClient::wait_published(std::chrono::milliseconds timeout) {
  std::unique_lock lock(_mu);
  return _cv.wait_for(lock, timeout, [&] { return _unacked.empty(); });
}

bool MosquittoClient::connected() const {
  std::lock_guard lock(_mu);
  return _connected;
}

void MosquittoClient::disconnect() {
  if (_loop_started) mosquitto_disconnect_v5(_mosq, 0, nullptr);
}

}  // namespace fleettwin::mqtt
