// In-memory constructors for the pattern tables, for fuzz targets and tests: the same
// parsers open_regexp_table()/open_pcre_table()/open_cidr_table() use on a file's text.
// `source_name` is what warnings call the map ("regexp map NAME, line N: ...").
#pragma once

#include <memory>
#include <string_view>

#include "util/table/table.h"

namespace postern::table {

std::unique_ptr<Table> regexp_table_from_text(std::string_view source_name, std::string_view text,
                                              unsigned flags = kReadOnly);
std::unique_ptr<Table> pcre_table_from_text(std::string_view source_name, std::string_view text,
                                            unsigned flags = kReadOnly);
std::unique_ptr<Table> cidr_table_from_text(std::string_view source_name, std::string_view text,
                                            unsigned flags = kReadOnly);

}  // namespace postern::table
