// Placeholder until this group of table types lands; removed by the change that implements them.
#include "util/table/table_types.h"
namespace postern::table {
TableResult open_hash_table(std::string_view, std::string_view, unsigned) { return make_error("hash tables are not built in yet"); }
TableResult open_btree_table(std::string_view, std::string_view, unsigned) { return make_error("btree tables are not built in yet"); }
TableResult open_texthash_table(std::string_view, std::string_view, unsigned) { return make_error("texthash tables are not built in yet"); }
TableResult open_inline_table(std::string_view, std::string_view, unsigned) { return make_error("inline tables are not built in yet"); }
TableResult open_static_table(std::string_view, std::string_view, unsigned) { return make_error("static tables are not built in yet"); }
TableResult open_fail_table(std::string_view, std::string_view, unsigned) { return make_error("fail tables are not built in yet"); }
TableResult open_unix_table(std::string_view, std::string_view, unsigned) { return make_error("unix tables are not built in yet"); }
}
