// The built-in model catalog is looked up lazily (ModelCatalog::Builtin):
// Find skims the embedded text for names and converts only the entry it
// returns. It must answer exactly as the whole-catalog parse does, for every
// id, "also" repo and alias in data/models/*.json.
#include <cctype>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vramfit/catalog.h"

namespace vramfit {
namespace {

void ExpectSameEntry(const CatalogModel& a, const CatalogModel& b, const std::string& name) {
  EXPECT_EQ(a.id, b.id) << name;
  EXPECT_EQ(a.also, b.also) << name;
  EXPECT_EQ(a.aliases, b.aliases) << name;
  EXPECT_EQ(a.display, b.display) << name;
  EXPECT_EQ(a.exact_params, b.exact_params) << name;
  EXPECT_EQ(a.exact_params_note, b.exact_params_note) << name;
  EXPECT_EQ(a.checkpoint_bytes, b.checkpoint_bytes) << name;
  EXPECT_EQ(a.config_json, b.config_json) << name;
  EXPECT_EQ(a.source, b.source) << name;
}

TEST(CatalogLazyTest, FindAnswersLikeTheWholeParse) {
  const ModelCatalog& cat = ModelCatalog::Builtin();
  // models() parses the whole catalog, as ModelCatalog::Parse does.
  int names = 0;
  for (const CatalogModel& m : cat.models()) {
    std::vector<std::string> all = {m.id};
    all.insert(all.end(), m.also.begin(), m.also.end());
    all.insert(all.end(), m.aliases.begin(), m.aliases.end());
    for (const std::string& n : all) {
      for (const std::string& spelled : {n, [&] {
             std::string up = n;
             for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
             return up;
           }()}) {
        const CatalogModel* found = cat.Find(spelled);
        ASSERT_NE(found, nullptr) << spelled;
        ExpectSameEntry(*found, m, spelled);
        ++names;
      }
    }
  }
  // data/models/*.json: 97 entries, each with an id and most with aliases.
  EXPECT_GT(names, 2 * 97);
  // The same entry comes back for the same name (Find hands out pointers).
  EXPECT_EQ(cat.Find("meta-llama/Llama-3.1-8B"), cat.Find("meta-llama/llama-3.1-8b"));
  // Names the catalog does not hold.
  EXPECT_EQ(cat.Find("meta-llama/Llama-3.1-9B"), nullptr);
  EXPECT_EQ(cat.Find(""), nullptr);
  EXPECT_EQ(cat.Find("config"), nullptr);
  EXPECT_EQ(cat.Find("LlamaForCausalLM"), nullptr);
}

// Did-you-mean still sees the whole catalog.
TEST(CatalogLazyTest, SuggestSeesEveryModel) {
  const auto s = ModelCatalog::Builtin().Suggest("meta-llama/Llama-3.1-8", 3);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].rfind("meta-llama/Llama-3.1-8B", 0), 0u) << s[0];
}

}  // namespace
}  // namespace vramfit
