// The bridge's MQTT decoder (src/mqtt/codec.h) on a byte stream from a broker, fed in chunks as a socket
// delivers it. First byte: protocol version and chunk size; the rest: the stream.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "mqtt/codec.h"

using namespace fleettwin::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Version version = (data[0] & 1) ? Version::kV5 : Version::kV311;
  const std::size_t chunk = 1 + (data[0] >> 1);
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  Decoder decoder(version, 4096);
  bool failed = false;
  for (std::size_t pos = 0; pos < stream.size() && !failed; pos += chunk) {
    decoder.feed(stream.substr(pos, chunk));
    for (;;) {
      Packet packet;
      const Decoder::Status status = decoder.next(packet);
      if (status == Decoder::Status::kNeedMore) break;
      if (status == Decoder::Status::kError) {
        FUZZ_CHECK(!decoder.error().empty(), "an error without a reason");
        failed = true;
        break;
      }
      // A decoded PUBLISH encodes and decodes back to itself (the fakes playing the broker rely on it).
      if (const auto* p = std::get_if<Publish>(&packet); p && p->qos <= 1) {
        const std::string bytes = Encoder::publish(version, *p);
        Decoder again(version, bytes.size() + 16);
        again.feed(bytes);
        Packet back;
        FUZZ_CHECK(again.next(back) == Decoder::Status::kPacket, again.error());
        const auto* q = std::get_if<Publish>(&back);
        FUZZ_CHECK(q && q->topic == p->topic && q->payload == p->payload && q->qos == p->qos &&
                       q->packet_id == p->packet_id,
                   "PUBLISH round trip");
      }
    }
  }
  // One packet body decoded on its own, as the client does after splitting the fixed header.
  Packet packet;
  (void)Decoder::decode(version, data[0], stream, packet);
  return 0;
}
