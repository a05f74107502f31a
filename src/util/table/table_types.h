// Factory for each table type. table.cc maps the type name to one of these; each lives in
// its own file (table_hash.cc, table_cidr.cc, ...).
#pragma once

#include "util/table/table.h"

namespace postern::table {

using TableResult = Result<std::unique_ptr<Table>>;

// Berkeley DB hash and btree files (NAME.db), interchangeable with Postfix's.
TableResult open_hash_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_btree_table(std::string_view spec, std::string_view name, unsigned flags);
// Read into memory from the source text file at open.
TableResult open_texthash_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_inline_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_static_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_fail_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_unix_table(std::string_view spec, std::string_view name, unsigned flags);
// Pattern tables.
TableResult open_cidr_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_regexp_table(std::string_view spec, std::string_view name, unsigned flags);
TableResult open_pcre_table(std::string_view spec, std::string_view name, unsigned flags);
// SQL.
TableResult open_mysql_table(std::string_view spec, std::string_view name, unsigned flags);

}  // namespace postern::table
