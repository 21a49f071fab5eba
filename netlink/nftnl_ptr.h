// Move-only owners for libnftnl objects: every nftnl_* allocation in iocwall is held by one of
// these, so no error path can leak or double-free.
#pragma once

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include <memory>

namespace iocwall::nl {

struct NftnlFree {
  void operator()(nftnl_table* p) const { nftnl_table_free(p); }
  void operator()(nftnl_chain* p) const { nftnl_chain_free(p); }
  void operator()(nftnl_set* p) const { nftnl_set_free(p); }
  void operator()(nftnl_rule* p) const { nftnl_rule_free(p); }
  void operator()(nftnl_expr* p) const { nftnl_expr_free(p); }
  void operator()(nftnl_obj* p) const { nftnl_obj_free(p); }
  void operator()(nftnl_gen* p) const { nftnl_gen_free(p); }
  void operator()(nftnl_expr_iter* p) const { nftnl_expr_iter_destroy(p); }
};

template <typename T>
using NftnlPtr = std::unique_ptr<T, NftnlFree>;

using TablePtr = NftnlPtr<nftnl_table>;
using ChainPtr = NftnlPtr<nftnl_chain>;
using SetPtr = NftnlPtr<nftnl_set>;
using RulePtr = NftnlPtr<nftnl_rule>;
using ExprPtr = NftnlPtr<nftnl_expr>;
using ObjPtr = NftnlPtr<nftnl_obj>;
using GenPtr = NftnlPtr<nftnl_gen>;
using ExprIterPtr = NftnlPtr<nftnl_expr_iter>;

}  // namespace iocwall::nl
