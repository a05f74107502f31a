// What postmap(1) and postalias(1) have in common: building a table from a source file
// (or stdin with -i) safely, and the query (-q), delete (-d) and dump (-s) modes with
// Postfix's output formats, messages and exit codes. The two programs differ only in
// how one source line becomes a key and a value, and in postalias's extra entries.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/config/config.h"
#include "util/table/table.h"
#include "util/table/table_source.h"

namespace postern::table {

struct MapCommand {
    std::string default_type = "hash";  // default_database_type, for names without "type:"
    unsigned flags = kFoldFix | kDupWarn;  // fold, NUL and duplicate choices from the options
    bool alias_format = false;          // postalias: "key:<TAB>value" in -q - and -s output
    bool save_permissions = true;       // -p clears: result inherits the source's group/other bits
    bool as_owner = true;               // -o clears: as root, build as the source file's owner
};

// "name" -> "default_type:name"; "type:name" stays as it is.
std::string full_spec(std::string_view arg, std::string_view default_type);

// -q key: the first map that has the key prints its value. Exit status 0 when found.
int query_one(const MapCommand& cmd, const std::vector<std::string>& maps, const std::string& key);

// How -q - turns standard input into keys: one per line, or (-h/-b) header and body
// lines of a message.
struct QueryKeyMode {
    bool headers = false;  // -h
    bool body = false;     // -b
};

// -q -: one "key<TAB>value" line per key found. Exit status 0 when any was found.
int query_stdin(const MapCommand& cmd, const std::vector<std::string>& maps, QueryKeyMode mode);

// -d key / -d -: remove the key from every map. Exit status 0 when any was removed.
int delete_one(const MapCommand& cmd, const std::vector<std::string>& maps, const std::string& key);
int delete_stdin(const MapCommand& cmd, const std::vector<std::string>& maps);

// -s: prints every entry of the first map.
int sequence(const MapCommand& cmd, const std::vector<std::string>& maps);

// The modes that read or edit existing tables: -d key|-, -q key|-, -s.
struct LookupModes {
    const char* query = nullptr;
    const char* delkey = nullptr;
    bool sequence = false;
    QueryKeyMode keys;
};
// Runs the mode asked for and returns the exit status; -1 when none was (a build).
// `usage` must not return; it is called when -d or -q names no map.
int run_lookup_mode(const MapCommand& cmd, const std::vector<std::string>& maps, const LookupModes& modes,
                    const std::function<void()>& usage);

// smtputf8_enable as postmap and postalias read it, with Postfix's default that depends
// on compatibility_level when main.cf does not set it.
bool smtputf8_enabled(const config::Config& config);

// Building: `parse` turns each logical line into zero or one entry, appending warnings;
// `finish` may add entries after the source (postalias's "@" and NIS entries).
using LineParser = std::function<std::optional<SourceEntry>(const LogicalLine& line, std::string_view path,
                                                            std::vector<std::string>& warnings)>;
using BuildFinisher = std::function<void(Table& table, bool incremental)>;

// Builds `spec` from its source file (incremental: from stdin into the existing table).
// Every error is fatal, as in Postfix; warnings are logged and the build goes on.
void build_map(const MapCommand& cmd, const std::string& spec, bool incremental, const LineParser& parse,
               const BuildFinisher& finish);

// Stores key and value byte for byte (no folding, no NUL) in a hash:/btree: table, for
// entries that Postfix writes that way (postalias's YP_LAST_MODIFIED). False when the
// table is of another type.
Status put_raw(Table& table, std::string_view key, std::string_view value);

}  // namespace postern::table
