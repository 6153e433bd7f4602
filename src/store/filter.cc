#include "store/filter.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/hex.h"

namespace fleettwin::store {
namespace {

// The twin fields that are not signals, before and after the signals in filter_fields() order.
const std::vector<FilterField> kHeadFields{{"_id", FilterType::kString},
                                           {"version", FilterType::kNumber},
                                           {"reported.seq", FilterType::kNumber},
                                           {"reported.ts", FilterType::kNumber}};
const std::vector<FilterField> kTailFields{
    {"health.score", FilterType::kNumber},          {"health.threshold", FilterType::kNumber},
    {"health.status", FilterType::kString},         {"health.since", FilterType::kNumber},
    {"health.model_version", FilterType::kString},  {"connection.online", FilterType::kBool},
    {"connection.first_seen", FilterType::kNumber}, {"connection.last_seen", FilterType::kNumber},
    {"stats.messages", FilterType::kNumber},        {"stats.distance_km", FilterType::kNumber}};

constexpr std::string_view kReported = "reported.";
constexpr std::string_view kMetadata = "metadata.";

FilterField signal_field(std::string_view prefix, const catalog::Catalog& catalog, std::size_t i) {
  return FilterField{std::string(prefix) + catalog[i].field, FilterType::kNumber, i};
}

// The grammar is nine productions; a hand-written recursive-descent parser gives exact error positions
// with less code than wiring a parser generator into the build.
class Parser {
 public:
  Parser(std::string_view text, const catalog::Catalog& catalog) : _text(text), _catalog(catalog) {}

  Filter parse() {
    if (_text.size() > kMaxFilterLength)
      throw FilterError(kMaxFilterLength,
                        "filter longer than " + std::to_string(kMaxFilterLength) + " bytes");
    skip_space();
    if (_pos == _text.size()) throw FilterError(_pos, "empty filter");
    Filter f = parse_or();
    skip_space();
    if (_pos != _text.size()) throw FilterError(_pos, "unexpected '" + token_text() + "'");
    return f;
  }

 private:
  void skip_space() {
    while (_pos < _text.size() && std::isspace(static_cast<unsigned char>(_text[_pos])) != 0) ++_pos;
  }
  bool accept(std::string_view tok) {
    skip_space();
    if (_text.substr(_pos, tok.size()) != tok) return false;
    _pos += tok.size();
    return true;
  }
  std::string token_text() const {
    size_t end = _pos;
    while (end < _text.size() && end - _pos < 16 && std::isspace(static_cast<unsigned char>(_text[end])) == 0)
      ++end;
    return std::string(_text.substr(_pos, end - _pos));
  }
  std::string expected(std::string_view what) const {
    if (_pos >= _text.size()) return "expected " + std::string(what) + ", found end of filter";
    return "expected " + std::string(what) + ", found '" + token_text() + "'";
  }

  Filter combine(Filter::Kind kind, Filter first, Filter (Parser::*next)(), std::string_view op) {
    if (!accept(op)) return first;
    Filter out;
    out.kind = kind;
    out.children.push_back(std::move(first));
    do {
      out.children.push_back((this->*next)());
    } while (accept(op));
    return out;
  }
  Filter parse_or() { return combine(Filter::Kind::kOr, parse_and(), &Parser::parse_and, "||"); }
  Filter parse_and() { return combine(Filter::Kind::kAnd, parse_unary(), &Parser::parse_unary, "&&"); }

  Filter parse_unary() {
    skip_space();
    // '!' but not the start of '!=' (which is never valid here anyway, and reads better as an error).
    if (_pos < _text.size() && _text[_pos] == '!' && _text.substr(_pos, 2) != "!=") {
      const Nesting nest(*this);
      ++_pos;
      Filter out;
      out.kind = Filter::Kind::kNot;
      out.children.push_back(parse_unary());
      return out;
    }
    if (_pos < _text.size() && _text[_pos] == '(') {
      const Nesting nest(*this);
      ++_pos;
      Filter inner = parse_or();
      skip_space();
      if (!accept(")")) throw FilterError(_pos, expected("')'"));
      return inner;
    }
    return parse_compare();
  }

  /// One level of '(' or '!' while it is parsed: refuses the one past kMaxFilterDepth, before recursing.
  class Nesting {
   public:
    explicit Nesting(Parser& p) : _p(p) {
      if (++_p._depth > kMaxFilterDepth)
        throw FilterError(_p._pos, "nested deeper than " + std::to_string(kMaxFilterDepth) + " levels");
    }
    ~Nesting() { --_p._depth; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Parser& _p;
  };

  Filter parse_compare() {
    skip_space();
    const size_t field_pos = _pos;
    while (_pos < _text.size() && (std::isalnum(static_cast<unsigned char>(_text[_pos])) != 0 ||
                                   _text[_pos] == '_' || _text[_pos] == '.'))
      ++_pos;
    if (_pos == field_pos) throw FilterError(_pos, expected("a field name"));
    std::string_view name = _text.substr(field_pos, _pos - field_pos);
    auto field = find_filter_field(name, _catalog);
    if (!field) throw FilterError(field_pos, "unknown field '" + std::string(name) + "'");
    Filter out;
    out.field = *field;
    skip_space();
    const size_t op_pos = _pos;
    // Longest operators first, so "<=" is not read as "<" followed by "=".
    static constexpr std::pair<std::string_view, FilterOp> kOps[] = {
        {"==", FilterOp::kEq}, {"!=", FilterOp::kNe}, {"<=", FilterOp::kLe},
        {">=", FilterOp::kGe}, {"<", FilterOp::kLt},  {">", FilterOp::kGt}};
    bool found = false;
    for (const auto& [tok, op] : kOps) {
      if (accept(tok)) {
        out.op = op;
        found = true;
        break;
      }
    }
    if (!found) throw FilterError(op_pos, expected("a comparison operator (== != < <= > >=)"));
    skip_space();
    const size_t value_pos = _pos;
    out.value = parse_literal();
    FilterType got = std::holds_alternative<double>(out.value)        ? FilterType::kNumber
                     : std::holds_alternative<std::string>(out.value) ? FilterType::kString
                                                                      : FilterType::kBool;
    static constexpr const char* kTypeNames[] = {"a number", "a string", "true or false"};
    if (got != field->type) {
      throw FilterError(value_pos, "field '" + field->path + "' compares with " +
                                       kTypeNames[static_cast<int>(field->type)] + ", not " +
                                       kTypeNames[static_cast<int>(got)]);
    }
    if (got == FilterType::kBool && out.op != FilterOp::kEq && out.op != FilterOp::kNe) {
      throw FilterError(op_pos, "field '" + field->path + "' is true/false: only == and != apply");
    }
    return out;
  }

  FilterValue parse_literal() {
    if (_pos >= _text.size()) throw FilterError(_pos, expected("a value"));
    const char c = _text[_pos];
    if (c == '"') return parse_string();
    if (c == '-' || c == '+' || c == '.' || std::isdigit(static_cast<unsigned char>(c)) != 0) {
      const size_t start = _pos;
      size_t end = _pos;
      if (_text[end] == '+' || _text[end] == '-') ++end;
      while (end < _text.size() &&
             (std::isalnum(static_cast<unsigned char>(_text[end])) != 0 || _text[end] == '.' ||
              ((_text[end] == '-' || _text[end] == '+') && (_text[end - 1] == 'e' || _text[end - 1] == 'E'))))
        ++end;
      std::string_view num = _text.substr(start, end - start);
      if (!num.empty() && num[0] == '+') num.remove_prefix(1);
      double v = 0;
      auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
      if (ec != std::errc() || ptr != num.data() + num.size() || !std::isfinite(v)) {
        throw FilterError(start, "malformed number '" + std::string(_text.substr(start, end - start)) + "'");
      }
      _pos = end;
      return v;
    }
    for (auto [word, value] : {std::pair<std::string_view, bool>{"true", true}, {"false", false}}) {
      if (_text.substr(_pos, word.size()) == word &&
          (_pos + word.size() == _text.size() ||
           (std::isalnum(static_cast<unsigned char>(_text[_pos + word.size()])) == 0 &&
            _text[_pos + word.size()] != '_'))) {
        _pos += word.size();
        return value;
      }
    }
    throw FilterError(_pos, expected("a value (number, \"string\", true or false)"));
  }

  std::string parse_string() {
    const size_t open = _pos++;
    std::string out;
    while (_pos < _text.size()) {
      char c = _text[_pos++];
      if (c == '"') return out;
      if (c == '\\') {
        if (_pos >= _text.size()) break;
        char e = _text[_pos++];
        if (e != '"' && e != '\\') throw FilterError(_pos - 2, std::string("unknown escape '\\") + e + "'");
        out.push_back(e);
        continue;
      }
      out.push_back(c);
    }
    throw FilterError(open, "unterminated string");
  }

  std::string_view _text;
  const catalog::Catalog& _catalog;
  size_t _pos = 0;
  int _depth = 0;  // '(' and '!' open around _pos
};

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + '"';
}

std::string value_text(const FilterValue& v) {
  if (const double* d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return quote(std::get<std::string>(v));
}

template <typename T>
bool compare(const T& a, FilterOp op, const T& b) {
  switch (op) {
    case FilterOp::kEq:
      return a == b;
    case FilterOp::kNe:
      return a != b;
    case FilterOp::kLt:
      return a < b;
    case FilterOp::kLe:
      return a <= b;
    case FilterOp::kGt:
      return a > b;
    case FilterOp::kGe:
      return a >= b;
  }
  return false;
}

std::string unhex(std::string_view text) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (text.size() % 2 != 0) throw FilterError(0, "malformed paging cursor");
  std::string out;
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = digit(text[i]);
    int lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) throw FilterError(0, "malformed paging cursor");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace

FilterError::FilterError(size_t pos, const std::string& message)
    : std::runtime_error("filter: at position " + std::to_string(pos) + ": " + message), position(pos) {}

std::vector<FilterField> filter_fields(const catalog::Catalog& catalog) {
  std::vector<FilterField> f = kHeadFields;
  for (std::size_t i = 0; i < catalog.size(); ++i) f.push_back(signal_field(kReported, catalog, i));
  for (std::size_t i = 0; i < catalog.size(); ++i) f.push_back(signal_field(kMetadata, catalog, i));
  f.insert(f.end(), kTailFields.begin(), kTailFields.end());
  return f;
}

std::optional<FilterField> find_filter_field(std::string_view path, const catalog::Catalog& catalog) {
  if (path == "id") path = "_id";
  for (const auto* fields : {&kHeadFields, &kTailFields}) {
    for (const auto& f : *fields) {
      if (f.path == path) return f;
    }
  }
  // reported.seq and reported.ts matched above; every other reported.X / metadata.X is a signal, by any
  // of its names (a VSS name keeps its dots: "reported.Vehicle.Speed").
  for (const std::string_view prefix : {kReported, kMetadata}) {
    if (!path.starts_with(prefix)) continue;
    if (const auto i = catalog.find(path.substr(prefix.size()))) return signal_field(prefix, catalog, *i);
  }
  return std::nullopt;
}

std::string_view to_string(FilterOp op) {
  static constexpr std::string_view kNames[] = {"==", "!=", "<", "<=", ">", ">="};
  return kNames[static_cast<int>(op)];
}

Filter parse_filter(std::string_view text, const catalog::Catalog& catalog) {
  return Parser(text, catalog).parse();
}

std::string to_string(const Filter& f) {
  switch (f.kind) {
    case Filter::Kind::kCompare:
      return f.field.path + " " + std::string(to_string(f.op)) + " " + value_text(f.value);
    case Filter::Kind::kNot:
      return "!(" + to_string(f.children[0]) + ")";
    case Filter::Kind::kAnd:
    case Filter::Kind::kOr: {
      std::string out;
      for (const Filter& c : f.children) {
        if (!out.empty()) out += f.kind == Filter::Kind::kAnd ? " && " : " || ";
        out += "(" + to_string(c) + ")";
      }
      return out;
    }
  }
  return {};
}

FilterValue twin_field_value(const core::Twin& t, const FilterField& field) {
  const std::string& p = field.path;
  if (p == "_id") return t.id;
  if (p == "version") return static_cast<double>(t.version);
  if (p == "reported.seq") return static_cast<double>(t.reported.seq);
  if (p == "reported.ts") return static_cast<double>(t.reported.ts);
  if (p == "health.score") return t.health.score;
  if (p == "health.threshold") return t.health.threshold;
  if (p == "health.status") return std::string(core::to_string(t.health.status));
  if (p == "health.since") return static_cast<double>(t.health.since);
  if (p == "health.model_version") return t.health.model_version;
  if (p == "connection.online") return t.online;
  if (p == "connection.first_seen") return static_cast<double>(t.first_seen);
  if (p == "connection.last_seen") return static_cast<double>(t.last_seen);
  if (p == "stats.messages") return static_cast<double>(t.messages);
  if (p == "stats.distance_km") return t.distance_km;
  const std::size_t i = field.signal;
  if (i != FilterField::kNoSignal && p.starts_with(kReported)) {
    return i < t.reported.values.size() ? t.reported.values[i] : core::kAbsent;
  }
  if (i != FilterField::kNoSignal && p.starts_with(kMetadata)) {
    return i < t.metadata.size() ? static_cast<double>(t.metadata[i]) : 0.0;
  }
  throw FilterError(0, "unknown field '" + p + "'");
}

bool matches(const Filter& f, const core::Twin& twin) {
  switch (f.kind) {
    case Filter::Kind::kAnd:
      for (const Filter& c : f.children) {
        if (!matches(c, twin)) return false;
      }
      return true;
    case Filter::Kind::kOr:
      for (const Filter& c : f.children) {
        if (matches(c, twin)) return true;
      }
      return false;
    case Filter::Kind::kNot:
      return !matches(f.children[0], twin);
    case Filter::Kind::kCompare:
      break;
  }
  FilterValue v = twin_field_value(twin, f.field);
  if (const double* d = std::get_if<double>(&v)) {
    // Stores keep a NaN as NULL/null, which no comparison but != matches.
    if (std::isnan(*d)) return f.op == FilterOp::kNe;
    return compare(*d, f.op, std::get<double>(f.value));
  }
  if (const bool* b = std::get_if<bool>(&v)) return compare(*b, f.op, std::get<bool>(f.value));
  return compare(std::get<std::string>(v), f.op, std::get<std::string>(f.value));
}

TwinSort parse_sort(std::string_view text, const catalog::Catalog& catalog) {
  TwinSort out;
  if (text.empty()) return out;
  if (text[0] == '-') {
    out.descending = true;
    text.remove_prefix(1);
  }
  auto field = find_filter_field(text, catalog);
  if (!field) throw FilterError(out.descending ? 1 : 0, "unknown sort field '" + std::string(text) + "'");
  out.field = *field;
  return out;
}

std::string twin_cursor(const TwinSort& sort, const core::Twin& last) {
  if (sort.by_id()) return last.id;
  // value text, a NUL, the id: hex-encoded so it is safe in a URL query and opaque to clients.
  FilterValue v = twin_field_value(last, sort.field);
  std::string raw = std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : value_text(v);
  raw.push_back('\0');
  raw += last.id;
  return core::to_hex(raw);
}

TwinCursor decode_twin_cursor(const TwinSort& sort, std::string_view cursor) {
  if (sort.by_id()) return TwinCursor{std::string(cursor), std::string(cursor)};
  std::string raw = unhex(cursor);
  size_t nul = raw.find('\0');
  if (nul == std::string::npos) throw FilterError(0, "malformed paging cursor");
  TwinCursor out;
  out.id = raw.substr(nul + 1);
  std::string value = raw.substr(0, nul);
  switch (sort.field.type) {
    case FilterType::kString:
      out.value = value;
      break;
    case FilterType::kBool:
      out.value = value == "true";
      break;
    case FilterType::kNumber: {
      double d = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), d);
      if (ec != std::errc() || ptr != value.data() + value.size())
        throw FilterError(0, "malformed paging cursor");
      out.value = d;
      break;
    }
  }
  return out;
}

}  // namespace fleettwin::store
