// Schema resolution (Avro spec "Schema Resolution"): what a reader schema can read of a writer's data.
#include "registry/schema.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
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

/// Collects the reasons a reader cannot read a writer's data. One per avro_read_problems() call.
class ResolutionChecker {
 public:
  std::vector<std::string> problems;

  void check(const AvroNode* r, const AvroNode* w, const std::string& path) {
    // A pair already being resolved further up is a cycle through a recursive type: it holds if the rest
    // of the walk finds nothing, as in Avro Java.
    if (!_active.insert({r, w}).second) return;
    resolve(r, w, path);
    _active.erase({r, w});
  }

 private:
  bool readable(const AvroNode* r, const AvroNode* w, const std::string& path) const {
    ResolutionChecker trial;
    trial._active = _active;
    trial.check(r, w, path);
    return trial.problems.empty();
  }

  void problem(const std::string& path, const std::string& what) { problems.push_back(path + ": " + what); }

  void resolve(const AvroNode* r, const AvroNode* w, const std::string& path) {
    if (w->kind == AvroKind::kUnion) {
      // Any writer branch may occur in the data, so each must be readable.
      for (std::size_t i = 0; i < w->branches.size(); ++i) {
        const AvroNode* b = w->branches[i];
        if (r->kind != AvroKind::kUnion) {
          check(r, b, path);
        } else if (std::none_of(r->branches.begin(), r->branches.end(),
                                [&](const AvroNode* rb) { return readable(rb, b, path); })) {
          std::string theirs;
          for (const AvroNode* rb : r->branches) theirs += (theirs.empty() ? "" : ", ") + describe(rb);
          problem(path, "the writer's union branch " + describe(b) +
                            " is not readable by any of the reader's (" + theirs + ")");
        }
      }
      return;
    }
    if (r->kind == AvroKind::kUnion) {
      if (std::none_of(r->branches.begin(), r->branches.end(),
                       [&](const AvroNode* rb) { return readable(rb, w, path); })) {
        problem(path, "the reader's union has no branch that reads the writer's " + describe(w));
      }
      return;
    }
    if (r->kind != w->kind) {
      if (!promotable(w->kind, r->kind))
        problem(path, "type changed from " + describe(w) + " to " + describe(r));
      return;
    }
    switch (r->kind) {
      case AvroKind::kRecord:
        if (!names_match(r, w)) {
          problem(path, "record name changed from " + w->name + " to " + r->name);
          return;
        }
        for (const auto& rf : r->fields) {
          const auto wf = std::find_if(w->fields.begin(), w->fields.end(), [&](const AvroNode::Field& f) {
            return f.name == rf.name ||
                   std::find(rf.aliases.begin(), rf.aliases.end(), f.name) != rf.aliases.end();
          });
          if (wf != w->fields.end()) {
            check(rf.type, wf->type, path + "." + rf.name);
          } else if (!rf.has_default) {
            problem(path + "." + rf.name, "field added without a default");
          }
        }
        return;
      case AvroKind::kEnum:
        if (!names_match(r, w)) {
          problem(path, "enum name changed from " + w->name + " to " + r->name);
          return;
        }
        if (r->has_enum_default) return;
        for (const auto& s : w->symbols) {
          if (std::find(r->symbols.begin(), r->symbols.end(), s) == r->symbols.end()) {
            problem(path, "enum symbol " + s + " removed (and the reader has no enum default)");
          }
        }
        return;
      case AvroKind::kArray:
        check(r->items, w->items, path + "[]");
        return;
      case AvroKind::kMap:
        check(r->items, w->items, path + "{}");
        return;
      case AvroKind::kFixed:
        if (!names_match(r, w)) problem(path, "fixed name changed from " + w->name + " to " + r->name);
        if (r->size != w->size) {
          problem(path,
                  "fixed size changed from " + std::to_string(w->size) + " to " + std::to_string(r->size));
        }
        return;
      default:
        return;  // the same primitive
    }
  }

  std::set<std::pair<const AvroNode*, const AvroNode*>> _active;
};

}  // namespace

std::vector<std::string> avro_read_problems(const AvroSchema& reader, const AvroSchema& writer) {
  ResolutionChecker c;
  const AvroNode& root = reader.root();
  c.check(&root, &writer.root(),
          is_named(root.kind) ? std::string(root.short_name()) : std::string(to_string(root.kind)));
  return std::move(c.problems);
}

}  // namespace fleettwin::registry
