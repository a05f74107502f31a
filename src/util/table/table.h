// Lookup tables behind one interface, named "type:name" as in Postfix
// (hash:/etc/aliases, cidr:/etc/postern/clients, inline:{ a=b, c=d }, mysql:/file.cf).
// Every map Postern reads — aliases, access maps, transport, virtual, canonical — goes
// through open_table().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::table {

// Open flags; the names follow Postfix's DICT_FLAG_* so the semantics are easy to check.
enum OpenFlag : unsigned {
    kReadOnly = 1u << 0,     // O_RDONLY (the default for lookups)
    kCreate = 1u << 1,       // create or truncate (postmap building a fresh table)
    kFoldFix = 1u << 2,      // fold keys to lower case (fixed-string tables; postmap -f clears)
    kFoldMul = 1u << 3,      // fold keys of regexp/pcre tables (Postfix DICT_FLAG_FOLD_MUL)
    kTryNul1 = 1u << 4,      // keys stored with a trailing NUL (postmap -N)
    kTryNul0 = 1u << 5,      // keys stored without a trailing NUL (postmap -n)
    kDupReplace = 1u << 6,   // a duplicate key replaces the earlier value (postmap -r)
    kDupWarn = 1u << 7,      // a duplicate key warns and keeps the first (postmap -w)
    kDupIgnore = 1u << 8,    // a duplicate key is silently kept as the first
    kLock = 1u << 9,         // take the table's lock around updates
    kUtf8 = 1u << 10,        // keys and values must be valid UTF-8 (smtputf8)
    kSrcRhsIsFile = 1u << 11,// postmap -F: the value names a file whose base64 is stored
};

struct LookupResult {
    enum class Status { Found, NotFound, Error };
    Status status = Status::NotFound;
    std::string value;  // when Found
    std::string error;  // when Error: what went wrong, for a warning or a 4xx

    bool found() const { return status == Status::Found; }
    static LookupResult hit(std::string v) { return {Status::Found, std::move(v), {}}; }
    static LookupResult miss() { return {}; }
    static LookupResult fail(std::string e) { return {Status::Error, {}, std::move(e)}; }
};

class Table {
public:
    virtual ~Table() = default;

    // The lookup with Postfix's key rules for this table type (folding, NUL convention).
    virtual LookupResult lookup(std::string_view key) = 0;

    // Writable tables (hash, btree): add or replace one entry, delete one, iterate.
    // The defaults answer that the type cannot do it, naming the table.
    virtual Status update(std::string_view key, std::string_view value);
    // Ok(true) when the key was there.
    virtual Result<bool> remove(std::string_view key);
    // Calls fn for every entry until it returns false (postmap -s).
    virtual Status for_each(const std::function<bool(std::string_view key, std::string_view value)>& fn);
    // Flushes pending writes to disk (fsync for Berkeley DB).
    virtual Status sync();

    // "hash:/etc/aliases" as the caller named it.
    const std::string& spec() const { return spec_; }
    unsigned flags() const { return flags_; }
    // Fixed-string tables take the access(5) parent-domain walk; pattern tables
    // (regexp, pcre, cidr) see the whole key once.
    virtual bool is_pattern() const { return false; }
    // True when the file behind the table was replaced or modified since it was opened
    // (Postfix's dict_changed_name()): a rebuild renames a new NAME.db into place, so a
    // long-running reader checks this between requests and restarts to see the new data.
    virtual bool changed() const { return false; }

protected:
    Table(std::string spec, unsigned flags) : spec_(std::move(spec)), flags_(flags) {}

private:
    std::string spec_;
    unsigned flags_;
};

// Opens "type:name". Errors read like Postfix's ("unsupported dictionary type: foo",
// "open database /etc/x.db: No such file or directory", "/etc/x, line 3: ...").
Result<std::unique_ptr<Table>> open_table(std::string_view spec, unsigned flags = kReadOnly);

// Types for `postconf -m`, sorted.
std::vector<std::string_view> table_types();

// Splits "type:name" (inline's braces may contain ':'); false when there is no ':'.
bool split_spec(std::string_view spec, std::string_view& type, std::string_view& name);

}  // namespace postern::table
