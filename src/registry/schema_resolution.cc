// Schema resolution (Avro spec "Schema Resolution"): what a reader schema can read of a writer's data.
#include "registry/schema.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "codec/avro.h"
#include "codec/json_writer.h"

namespace fleettwin::registry {

namespace {

std::string describe(const AvroNode* n) {
  std::string out(to_string(n->kind));
  if (is_named(n->kind)) out += " " + n->name;
  return out;
}

// Avro Java's SchemaCompatibility.schemaNameEquals: unqualified names, or a reader alias naming the writer.
bool names_match(const AvroNode* r, const AvroNode* w) {
  return r->short_name() == w->short_name() ||
         std::find(r->aliases.begin(), r->aliases.end(), w->name) != r->aliases.end();
}

// Avro spec "Schema Resolution": which writer primitives a reader of another primitive type promotes.
bool promotable(AvroKind writer, AvroKind reader) {
  switch (writer) {
    case AvroKind::kInt:
      return reader == AvroKind::kLong || reader == AvroKind::kFloat || reader == AvroKind::kDouble;
    case AvroKind::kLong:
      return reader == AvroKind::kFloat || reader == AvroKind::kDouble;
    case AvroKind::kFloat:
      return reader == AvroKind::kDouble;
    case AvroKind::kString:
      return reader == AvroKind::kBytes;
    case AvroKind::kBytes:
      return reader == AvroKind::kString;
    default:
      return false;
  }
}

using Pair = std::pair<const AvroNode*, const AvroNode*>;

struct PairHash {
  std::size_t operator()(const Pair& p) const {
    return std::hash<const void*>()(p.first) * 31 + std::hash<const void*>()(p.second);
  }
};

/// Collects the reasons a reader cannot read a writer's data. One per avro_read_problems() call.
///
/// Why memoized: a union's branches are tried one by one, each a whole resolution of its own, so without
/// memory a schema of unions of records holding unions took time exponential in the nesting (two branches
/// per level: 2^depth walks), and a named type referenced from many places was walked once per reference.
/// Here every (reader node, writer node) pair is resolved once by each of the two walks below, so the work
/// is polynomial in the schemas' sizes whatever their shape:
/// - check() reports: it walks the pairs with their paths and records every problem, each pair once (a
///   pair met again at another path adds nothing new);
/// - readable() answers yes or no for a pair, as union branch selection needs, without texts.
class ResolutionChecker {
 public:
  std::vector<std::string> problems;
  std::size_t steps = 0;  ///< pairs resolved by either walk (tests bound it)

  void check(const AvroNode* r, const AvroNode* w, const std::string& path) {
    // A pair met before is either done (its problems are reported) or being resolved further up: a cycle
    // through a recursive type, which holds if the rest of the walk finds nothing, as in Avro Java.
    if (!_checked.insert({r, w}).second) return;
    Report report{*this, path};
    resolve(r, w, report);
  }

  bool readable(const AvroNode* r, const AvroNode* w);

 private:
  /// How resolve() reports in check(): every problem with its path; it always goes on.
  struct Report {
    ResolutionChecker& c;
    const std::string& path;
    std::string at(std::string_view a = {}, std::string_view b = {}) const {
      std::string p = path;
      p += a;
      p += b;
      return p;
    }
    bool child(const AvroNode* r, const AvroNode* w, const std::string& at) {
      c.check(r, w, at);
      return true;
    }
    template <typename Text>
    bool problem(const std::string& at, Text&& text) {
      c.problems.push_back(at + ": " + text());
      return true;
    }
  };
  /// How resolve() answers in readable(): no texts, and it stops at the first problem.
  struct Verdict {
    ResolutionChecker& c;
    bool ok = true;
    std::string at(std::string_view = {}, std::string_view = {}) const { return {}; }
    bool child(const AvroNode* r, const AvroNode* w, const std::string&) { return ok = c.readable(r, w); }
    template <typename Text>
    bool problem(const std::string&, Text&&) {
      return ok = false;
    }
  };

  template <typename Sink>
  void resolve(const AvroNode* r, const AvroNode* w, Sink& sink);
  template <typename Sink>
  void resolve_named(const AvroNode* r, const AvroNode* w, Sink& sink);

  /// readable()'s memory of a pair. kActive: being resolved (a cycle meeting it assumes yes); kTentative:
  /// yes, resting on that assumption about a pair still active at stack depth `low`; kYes / kNo: final.
  enum class State : uint8_t { kOpen, kActive, kTentative, kYes, kNo };
  struct Entry {
    State state = State::kOpen;
    std::size_t depth = 0;  ///< readable() frames open while kActive, this one included
    std::size_t low = 0;    ///< kTentative: the shallowest active pair it rests on
  };
  std::unordered_set<Pair, PairHash> _checked;
  std::unordered_map<Pair, Entry, PairHash> _memo;  // element references survive rehashing
  std::vector<Pair> _tentative;                     ///< kTentative pairs, in the order they were decided
  std::size_t _depth = 0;                           ///< readable() frames open
  std::size_t _low = SIZE_MAX;  ///< the shallowest active pair the open frame's answer rests on
};

// Greatest fixed point: a pair is readable unless the rules find a problem, with cycles assumed readable.
// A "no" is final whatever was assumed (assuming more pairs readable only turns answers into yes). A "yes"
// that rested on an assumption about a pair still being resolved is tentative until that pair is decided:
// made final with it when it is a yes, forgotten when it is a no. So each pair is resolved once per pair
// decided "no", polynomial, and the answers are the same as resolving from scratch each time.
bool ResolutionChecker::readable(const AvroNode* r, const AvroNode* w) {
  Entry& e = _memo[{r, w}];
  switch (e.state) {
    case State::kYes:
      return true;
    case State::kNo:
      return false;
    case State::kActive:
      _low = std::min(_low, e.depth);
      return true;
    case State::kTentative:
      _low = std::min(_low, e.low);
      return true;
    case State::kOpen:
      break;
  }
  const std::size_t depth = ++_depth;
  e.state = State::kActive;
  e.depth = depth;
  const std::size_t outer_low = std::exchange(_low, SIZE_MAX);
  const std::size_t mark = _tentative.size();
  Verdict verdict{*this};
  resolve(r, w, verdict);
  --_depth;
  const std::size_t low = _low;
  _low = outer_low;
  if (!verdict.ok) {
    for (std::size_t i = mark; i < _tentative.size(); ++i) _memo[_tentative[i]].state = State::kOpen;
    _tentative.resize(mark);
    e.state = State::kNo;
    return false;
  }
  if (low >= depth) {  // rested on nothing outside its own walk: final, with every yes decided in it
    for (std::size_t i = mark; i < _tentative.size(); ++i) _memo[_tentative[i]].state = State::kYes;
    _tentative.resize(mark);
    e.state = State::kYes;
    return true;
  }
  // What was decided in its walk now rests on what it rests on (low is the shallowest of them all).
  for (std::size_t i = mark; i < _tentative.size(); ++i) _memo[_tentative[i]].low = low;
  e.state = State::kTentative;
  e.low = low;
  _tentative.push_back({r, w});
  _low = std::min(_low, low);
  return true;
}

template <typename Sink>
void ResolutionChecker::resolve(const AvroNode* r, const AvroNode* w, Sink& sink) {
  ++steps;
  if (w->kind == AvroKind::kUnion) {
    // Any writer branch may occur in the data, so each must be readable.
    for (const AvroNode* b : w->branches) {
      if (r->kind != AvroKind::kUnion) {
        if (!sink.child(r, b, sink.at())) return;
      } else if (std::none_of(r->branches.begin(), r->branches.end(),
                              [&](const AvroNode* rb) { return readable(rb, b); })) {
        const bool go_on = sink.problem(sink.at(), [&] {
          std::string theirs;
          for (const AvroNode* rb : r->branches) theirs += (theirs.empty() ? "" : ", ") + describe(rb);
          return "the writer's union branch " + describe(b) + " is not readable by any of the reader's (" +
                 theirs + ")";
        });
        if (!go_on) return;
      }
    }
    return;
  }
  if (r->kind == AvroKind::kUnion) {
    if (std::none_of(r->branches.begin(), r->branches.end(),
                     [&](const AvroNode* rb) { return readable(rb, w); })) {
      sink.problem(sink.at(),
                   [&] { return "the reader's union has no branch that reads the writer's " + describe(w); });
    }
    return;
  }
  if (r->kind != w->kind) {
    if (!promotable(w->kind, r->kind))
      sink.problem(sink.at(), [&] { return "type changed from " + describe(w) + " to " + describe(r); });
    return;
  }
  if (r->kind == AvroKind::kArray) {
    sink.child(r->items, w->items, sink.at("[]"));
  } else if (r->kind == AvroKind::kMap) {
    sink.child(r->items, w->items, sink.at("{}"));
  } else if (is_named(r->kind)) {
    resolve_named(r, w, sink);
  }  // else the same primitive
}

template <typename Sink>
void ResolutionChecker::resolve_named(const AvroNode* r, const AvroNode* w, Sink& sink) {
  const std::string kind(to_string(r->kind));
  if (!names_match(r, w)) {
    sink.problem(sink.at(), [&] { return kind + " name changed from " + w->name + " to " + r->name; });
    if (r->kind != AvroKind::kFixed) return;
  }
  if (r->kind == AvroKind::kFixed) {
    if (r->size != w->size) {
      sink.problem(sink.at(), [&] {
        return "fixed size changed from " + std::to_string(w->size) + " to " + std::to_string(r->size);
      });
    }
    return;
  }
  if (r->kind == AvroKind::kEnum) {
    if (r->has_enum_default) return;
    for (const auto& s : w->symbols) {
      if (std::find(r->symbols.begin(), r->symbols.end(), s) == r->symbols.end() &&
          !sink.problem(sink.at(),
                        [&] { return "enum symbol " + s + " removed (and the reader has no enum default)"; }))
        return;
    }
    return;
  }
  for (const auto& rf : r->fields) {  // a record
    const auto wf = std::find_if(w->fields.begin(), w->fields.end(), [&](const AvroNode::Field& f) {
      return f.name == rf.name || std::find(rf.aliases.begin(), rf.aliases.end(), f.name) != rf.aliases.end();
    });
    if (wf != w->fields.end()) {
      if (!sink.child(rf.type, wf->type, sink.at(".", rf.name))) return;
    } else if (!rf.has_default &&
               !sink.problem(sink.at(".", rf.name), [] { return "field added without a default"; })) {
      return;
    }
  }
}

}  // namespace

std::vector<std::string> avro_read_problems(const AvroSchema& reader, const AvroSchema& writer,
                                            std::size_t* steps) {
  ResolutionChecker c;
  const AvroNode& root = reader.root();
  c.check(&root, &writer.root(),
          is_named(root.kind) ? std::string(root.short_name()) : std::string(to_string(root.kind)));
  if (steps) *steps = c.steps;
  return std::move(c.problems);
}

}  // namespace fleettwin::registry
