#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqtt/tls.h"

struct mosquitto;

namespace fleettwin::mqtt {

struct MosquittoOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::string client_id;  ///< empty: the library picks one and the session is clean
  bool v5 = true;
  std::optional<std::string> username;
  std::optional<std::string> password;
  TlsOptions tls;
  int keepalive_s = 30;
  bool clean_session = false;
};

/// A libmosquitto client on its own network thread (mosquitto_loop_start), for everything that does not
/// need to hold acknowledgements back: the bridge's command publisher, test devices, tools. Reconnects by
/// itself with exponential backoff; libmosquitto keeps QoS 1 messages until their PUBACK and resends them
/// after a reconnect. Callbacks run on the library's thread; the other methods may be called from any thread.
class MosquittoClient {
 public:
  using MessageCallback = std::function<void(std::string_view topic, std::string_view payload)>;

  explicit MosquittoClient(MosquittoOptions options);
  ~MosquittoClient();
  MosquittoClient(const MosquittoClient&) = delete;
  MosquittoClient& operator=(const MosquittoClient&) = delete;

  /// Connects and starts the network thread; waits up to `timeout` for the CONNACK. Throws with the
  /// library's reason on refusal or timeout.
  void connect(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Subscribes (before or after connect; renewed on every reconnect). Messages go to `on_message`.
  void subscribe(const std::string& filter, int qos, MessageCallback on_message);
  /// Publishes; returns the message id. `expiry_s` > 0 sets the MQTT 5 message expiry interval, after which
  /// a broker drops the message instead of delivering it to a car that comes back later.
  int publish(std::string_view topic, std::string_view payload, int qos, std::uint32_t expiry_s = 0);
  /// Waits until every QoS 1 message published so far is acknowledged; false on timeout.
  bool wait_published(std::chrono::milliseconds timeout);
  bool connected() const;
  void disconnect();

 private:
  friend struct MosquittoCallbacks;  // libmosquitto's C callbacks, in the .cc

  MosquittoOptions _options;
  struct mosquitto* _mosq = nullptr;
  mutable std::mutex _mu;
  std::condition_variable _cv;
  bool _connected = false;
  int _connack = -1;
  std::set<int> _unacked;
  std::vector<std::pair<std::string, int>> _subscriptions;
  MessageCallback _on_message;
  bool _loop_started = false;
};

}  // namespace fleettwin::mqtt
