#include "mqtt/codec.h"

#include <algorithm>

namespace fleettwin::mqtt {

namespace {

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s.data(), s.size());
}

// Fixed header + body; bodies here are bounded by 64 KiB strings so the varint cannot overflow.
std::string frame(std::uint8_t first, const std::string& body) {
  std::string out;
  out.reserve(body.size() + 5);
  out.push_back(static_cast<char>(first));
  Encoder::put_varint(out, static_cast<std::uint32_t>(body.size()));
  out += body;
  return out;
}

/// Bounds-checked reader over one packet body. Every getter returns false instead of reading past the end.
class Reader {
 public:
  explicit Reader(std::string_view d) : _d(d) {}
  std::size_t left() const { return _d.size() - _p; }
  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(_d[_p++]);
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>((static_cast<std::uint8_t>(_d[_p]) << 8) |
                                   static_cast<std::uint8_t>(_d[_p + 1]));
    _p += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(_d[_p + i]);
    _p += 4;
    return true;
  }
  bool varint(std::uint32_t& v) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      std::uint8_t b;
      if (!u8(b)) return false;
      v |= static_cast<std::uint32_t>(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) return true;
    }
    return false;  // a fifth continuation byte is malformed
  }
  bool bytes(std::size_t n, std::string_view& out) {
    if (left() < n) return false;
    out = _d.substr(_p, n);
    _p += n;
    return true;
  }
  bool str(std::string_view& out) {
    std::uint16_t n;
    return u16(n) && bytes(n, out);
  }
  std::string_view rest() {
    auto r = _d.substr(_p);
    _p = _d.size();
    return r;
  }

 private:
  std::string_view _d;
  std::size_t _p = 0;
};

// Walks a v5 property block, checking every property's shape so a malformed block is an error rather than
// garbage; calls `on(id, reader_positioned_at_value)` for the ones the caller wants, skipping the rest.
template <typename On>
std::string read_properties(Reader& r, On&& on) {
  std::uint32_t len;
  if (!r.varint(len)) return "bad property length";
  std::string_view block;
  if (!r.bytes(len, block)) return "property length beyond packet";
  Reader p(block);
  while (p.left() > 0) {
    std::uint32_t id;
    if (!p.varint(id)) return "bad property id";
    std::string_view sv, sv2;
    std::uint8_t b;
    std::uint16_t h;
    std::uint32_t w;
    bool ok;
    switch (id) {
      case 0x01:
      case 0x17:
      case 0x19:
      case 0x24:
      case 0x25:
      case 0x28:
      case 0x29:
      case 0x2A:
        ok = p.u8(b);
        if (ok) on(id, b, sv);
        break;
      case 0x13:
      case 0x21:
      case 0x22:
      case 0x23:
        ok = p.u16(h);
        if (ok) on(id, h, sv);
        break;
      case 0x02:
      case 0x11:
      case 0x18:
      case 0x27:
        ok = p.u32(w);
        if (ok) on(id, w, sv);
        break;
      case 0x0B:
        ok = p.varint(w);
        break;
      case 0x03:
      case 0x08:
      case 0x09:
      case 0x12:
      case 0x15:
      case 0x16:
      case 0x1A:
      case 0x1C:
      case 0x1F:
        ok = p.str(sv);  // UTF-8 strings and binary data share the u16-length layout
        if (ok) on(id, 0u, sv);
        break;
      case 0x26:
        ok = p.str(sv) && p.str(sv2);
        break;
      default:
        return "unknown property id " + std::to_string(id);
    }
    if (!ok) return "truncated property " + std::to_string(id);
  }
  return {};
}

auto ignore_props = [](std::uint32_t, std::uint32_t, std::string_view) {};

}  // namespace

bool Encoder::put_varint(std::string& out, std::uint32_t n) {
  if (n > 268435455u) return false;
  do {
    std::uint8_t b = n & 0x7f;
    n >>= 7;
    if (n) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n);
  return true;
}

std::string Encoder::connect(const ConnectOptions& o) {
  std::string b;
  put_str(b, "MQTT");
  b.push_back(static_cast<char>(o.version));
  std::uint8_t flags = 0;
  if (o.clean_start) flags |= 0x02;
  if (o.username) flags |= 0x80;
  if (o.password) flags |= 0x40;
  b.push_back(static_cast<char>(flags));
  put_u16(b, o.keepalive_s);
  if (o.version == Version::kV5) {
    std::string props;
    if (o.session_expiry_s) {
      props.push_back(0x11);
      put_u32(props, o.session_expiry_s);
    }
    if (o.receive_maximum) {
      props.push_back(0x21);
      put_u16(props, o.receive_maximum);
    }
    if (o.maximum_packet_size) {
      props.push_back(0x27);
      put_u32(props, o.maximum_packet_size);
    }
    put_varint(b, static_cast<std::uint32_t>(props.size()));
    b += props;
  }
  put_str(b, o.client_id);
  if (o.username) put_str(b, *o.username);
  if (o.password) put_str(b, *o.password);
  return frame(0x10, b);
}

std::string Encoder::subscribe(Version v, std::uint16_t packet_id, const std::vector<Subscription>& subs) {
  std::string b;
  put_u16(b, packet_id);
  if (v == Version::kV5) b.push_back(0);  // no properties
  for (const auto& s : subs) {
    put_str(b, s.filter);
    // v5 options byte: QoS in bits 0-1; No Local must stay 0 for shared subscriptions.
    b.push_back(static_cast<char>(s.qos & 0x03));
  }
  return frame(0x82, b);  // SUBSCRIBE's reserved flags are 0b0010
}

std::string Encoder::puback(Version v, std::uint16_t packet_id, std::uint8_t reason_code) {
  std::string b;
  put_u16(b, packet_id);
  // v5 allows omitting reason code 0 (success) and the properties; 3.1.1 has neither.
  if (v == Version::kV5 && reason_code != 0) b.push_back(static_cast<char>(reason_code));
  return frame(0x40, b);
}

std::string Encoder::pingreq() { return std::string("\xC0\x00", 2); }

std::string Encoder::disconnect(Version v, std::uint8_t reason_code) {
  std::string b;
  if (v == Version::kV5 && reason_code != 0) b.push_back(static_cast<char>(reason_code));
  return frame(0xE0, b);
}

std::string Encoder::publish(Version v, const Publish& p) {
  std::string b;
  put_str(b, p.topic);
  if (p.qos > 0) put_u16(b, p.packet_id);
  if (v == Version::kV5) b.push_back(0);
  b += p.payload;
  std::uint8_t first = 0x30 | static_cast<std::uint8_t>((p.qos & 3) << 1);
  if (p.dup) first |= 0x08;
  if (p.retain) first |= 0x01;
  return frame(first, b);
}

std::string Decoder::decode(Version v, std::uint8_t first, std::string_view body, Packet& out) {
  const auto type = static_cast<PacketType>(first >> 4);
  const std::uint8_t flags = first & 0x0f;
  const bool v5 = v == Version::kV5;
  Reader r(body);
  switch (type) {
    case PacketType::kConnack: {
      if (flags) return "CONNACK with flags";
      Connack c;
      std::uint8_t ack_flags;
      if (!r.u8(ack_flags) || !r.u8(c.reason_code)) return "CONNACK too short";
      if (ack_flags & 0xfe) return "CONNACK reserved flags set";
      c.session_present = ack_flags & 1;
      if (v5 && r.left() > 0) {
        auto e = read_properties(r, [&](std::uint32_t id, std::uint32_t n, std::string_view s) {
          if (id == 0x13) c.server_keepalive_s = static_cast<std::uint16_t>(n);
          if (id == 0x21) c.receive_maximum = static_cast<std::uint16_t>(n);
          if (id == 0x27) c.maximum_packet_size = n;
          if (id == 0x12) c.assigned_client_id = std::string(s);
        });
        if (!e.empty()) return "CONNACK: " + e;
      }
      if (r.left()) return "CONNACK trailing bytes";
      out = std::move(c);
      return {};
    }
    case PacketType::kPublish: {
      Publish p;
      p.qos = (flags >> 1) & 3;
      p.dup = flags & 0x08;
      p.retain = flags & 0x01;
      if (p.qos == 3) return "PUBLISH with QoS 3";
      if (p.qos == 0 && p.dup) return "PUBLISH QoS 0 with DUP";
      std::string_view topic;
      if (!r.str(topic)) return "PUBLISH topic truncated";
      if (p.qos > 0) {
        if (!r.u16(p.packet_id)) return "PUBLISH packet id truncated";
        if (p.packet_id == 0) return "PUBLISH packet id 0";
      }
      if (v5) {
        auto e = read_properties(r, ignore_props);
        if (!e.empty()) return "PUBLISH: " + e;
      }
      // We never allow topic aliases (no Topic Alias Maximum in CONNECT), so an empty topic is a broker bug.
      if (topic.empty()) return "PUBLISH with empty topic";
      p.topic = std::string(topic);
      p.payload = std::string(r.rest());
      out = std::move(p);
      return {};
    }
    case PacketType::kPuback: {
      if (flags) return "PUBACK with flags";
      Puback a;
      if (!r.u16(a.packet_id)) return "PUBACK too short";
      if (v5 && r.left()) {
        if (!r.u8(a.reason_code)) return "PUBACK truncated";
        if (r.left()) {
          auto e = read_properties(r, ignore_props);
          if (!e.empty()) return "PUBACK: " + e;
        }
      }
      if (r.left()) return "PUBACK trailing bytes";
      out = a;
      return {};
    }
    case PacketType::kSuback: {
      if (flags) return "SUBACK with flags";
      Suback s;
      if (!r.u16(s.packet_id)) return "SUBACK too short";
      if (v5) {
        auto e = read_properties(r, ignore_props);
        if (!e.empty()) return "SUBACK: " + e;
      }
      if (r.left() == 0) return "SUBACK without reason codes";
      while (r.left()) {
        std::uint8_t c;
        r.u8(c);
        s.reason_codes.push_back(c);
      }
      out = std::move(s);
      return {};
    }
    case PacketType::kPingresp:
      if (flags || !body.empty()) return "malformed PINGRESP";
      out = Pingresp{};
      return {};
    case PacketType::kDisconnect: {
      if (flags) return "DISCONNECT with flags";
      if (!v5) return "DISCONNECT from a 3.1.1 server";
      Disconnect d;
      if (r.left()) {
        r.u8(d.reason_code);
        if (r.left()) {
          auto e = read_properties(r, ignore_props);
          if (!e.empty()) return "DISCONNECT: " + e;
        }
      }
      if (r.left()) return "DISCONNECT trailing bytes";
      out = d;
      return {};
    }
    default:
      return "unexpected packet type " + std::to_string(first >> 4) + " from server";
  }
}

std::string Decoder::decode_oversize(Version v, std::uint8_t first, std::string_view prefix,
                                     std::size_t length, Publish& out) {
  out = Publish{};
  out.qos = (first >> 1) & 3;
  out.dup = first & 0x08;
  out.retain = first & 0x01;
  out.oversize = length;
  if (out.qos == 3) return "PUBLISH with QoS 3";
  Reader r(prefix);
  std::string_view topic;
  if (!r.str(topic) || topic.empty()) return "oversized PUBLISH whose topic does not fit the packet limit";
  if (out.qos > 0 && (!r.u16(out.packet_id) || out.packet_id == 0))
    return "oversized PUBLISH without packet id";
  out.topic = std::string(topic);
  // Properties that run past the prefix leave the payload unknown: the message is refused all the same.
  if (v == Version::kV5 && !read_properties(r, ignore_props).empty()) return {};
  out.payload = std::string(r.rest().substr(0, kOversizePrefix));
  return {};
}

void Decoder::feed(std::string_view bytes) {
  const std::size_t skipped = std::min(_skip, bytes.size());
  _skip -= skipped;
  bytes.remove_prefix(skipped);
  _buf.append(bytes.data(), bytes.size());
}

void Decoder::consume(std::size_t n) {
  _pos += n;
  if (_pos == _buf.size()) {
    _buf.clear();
    _pos = 0;
  } else if (_pos > 65536 && _pos * 2 > _buf.size()) {
    _buf.erase(0, _pos);
    _pos = 0;
  }
}

Decoder::Status Decoder::next_oversize(std::uint8_t first, std::size_t header, std::uint32_t len,
                                       Packet& out) {
  // The packet's start, up to the limit, is enough for its topic and packet id; wait for that much only.
  const std::size_t avail = _buf.size() - _pos;
  const std::size_t want = std::min<std::size_t>(len, _max);
  if (avail - header < want) return Status::kNeedMore;
  Publish p;
  auto e = decode_oversize(_version, first, std::string_view(_buf).substr(_pos + header, want), len, p);
  if (!e.empty()) {
    _error = std::move(e);
    return Status::kError;
  }
  out = std::move(p);
  const std::size_t total = header + len;
  _skip = total > avail ? total - avail : 0;  // the rest is dropped by feed() as it comes
  consume(std::min(total, avail));
  return Status::kPacket;
}

Decoder::Status Decoder::next(Packet& out) {
  if (!_error.empty()) return Status::kError;
  const std::size_t avail = _buf.size() - _pos;
  if (avail < 2) return Status::kNeedMore;
  // Remaining length: 1..4 bytes after the first byte.
  std::uint32_t len = 0;
  std::size_t i = 1;
  for (;; ++i) {
    if (i > 4) {
      _error = "remaining length longer than 4 bytes";
      return Status::kError;
    }
    if (i >= avail) return Status::kNeedMore;
    const auto b = static_cast<std::uint8_t>(_buf[_pos + i]);
    len |= static_cast<std::uint32_t>(b & 0x7f) << (7 * (i - 1));
    if (!(b & 0x80)) break;
  }
  const std::size_t header = i + 1;
  const auto first = static_cast<std::uint8_t>(_buf[_pos]);
  if (len > _max) {
    if (static_cast<PacketType>(first >> 4) == PacketType::kPublish)
      return next_oversize(first, header, len, out);
    _error = "packet of " + std::to_string(len) + " bytes exceeds the limit " + std::to_string(_max);
    return Status::kError;
  }
  if (avail - header < len) return Status::kNeedMore;
  auto e = decode(_version, first, std::string_view(_buf).substr(_pos + header, len), out);
  if (!e.empty()) {
    _error = std::move(e);
    return Status::kError;
  }
  consume(header + len);
  return Status::kPacket;
}

}  // namespace fleettwin::mqtt
