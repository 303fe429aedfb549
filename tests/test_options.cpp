// Options structs: every one is written with XGRAD_ARG (chained setters, getters, private
// members), CRTP bases chain into the derived type, and each optimizer's hyper-parameters
// are listed once (fields()): values(), set_value(), the state dict and the table of docs/optimizers.md agree
// with the struct's XGRAD_ARGs.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

using namespace xgrad;

namespace {

struct ToyOptions {
  explicit ToyOptions(double lr) : lr_(lr) {}
  XGRAD_ARG(double, lr);
  XGRAD_ARG(int, steps) = 10;
  XGRAD_ARG(const char*, label) = "toy";
};

template <class Derived>
struct ToyBase {
  using options_type = Derived;
  XGRAD_ARG(int, width) = 1;
};

struct ToyDerived : ToyBase<ToyDerived> {
  XGRAD_ARG(bool, flag) = false;
};

// public_<name><T>: T has a member `<name>_` that code outside it can read, which XGRAD_ARG
// never leaves (a concept, so that a private member makes it false rather than an error).
#define XGRAD_PUBLIC_FIELD_CONCEPT(name) \
  template <class T>                     \
  concept public_##name = requires(const T& o) { o.name##_; };
XGRAD_PUBLIC_FIELD_CONCEPT(steps)
XGRAD_PUBLIC_FIELD_CONCEPT(num_layers)
XGRAD_PUBLIC_FIELD_CONCEPT(bias)
XGRAD_PUBLIC_FIELD_CONCEPT(eps)
XGRAD_PUBLIC_FIELD_CONCEPT(ignore_index)
XGRAD_PUBLIC_FIELD_CONCEPT(momentum)
XGRAD_PUBLIC_FIELD_CONCEPT(epochs)
XGRAD_PUBLIC_FIELD_CONCEPT(patience)
XGRAD_PUBLIC_FIELD_CONCEPT(width)
XGRAD_PUBLIC_FIELD_CONCEPT(out)

// The old style, which the concepts must see.
struct PublicFields {
  int width_ = 0;
  double eps_ = 0.0;
};
static_assert(public_width<PublicFields> && public_eps<PublicFields>);

}  // namespace

TEST_CASE("XGRAD_ARG: chained setter, getter, default after the macro, private member") {
  ToyOptions o = ToyOptions(0.1).steps(20);
  CHECK(o.lr() == 0.1);
  CHECK(o.steps() == 20);
  CHECK(std::string(o.label()) == "toy");
  CHECK(std::string(ToyOptions(1).label("x").label()) == "x");
  static_assert(std::is_same_v<decltype(ToyOptions(1).steps(2)), ToyOptions&>);
  static_assert(std::is_same_v<decltype(std::declval<const ToyOptions&>().steps()), const int&>);
  static_assert(!public_steps<ToyOptions>);
}

TEST_CASE("XGRAD_ARG: a CRTP base's setters return the derived options") {
  ToyDerived d = ToyDerived().width(3).flag(true).width(4);
  CHECK(d.width() == 4);
  CHECK(d.flag());
  static_assert(std::is_same_v<decltype(ToyDerived().width(1)), ToyDerived&>);

  // Base setters, then derived ones, then base ones again: one LSTMOptions throughout.
  nn::LSTMOptions lstm = nn::LSTMOptions(4, 8).num_layers(2).proj_size(3).batch_first(true).bias(false)
                             .dropout(0.25).bidirectional(true).input_dropout(0.1).recurrent_dropout(0.2);
  static_assert(std::is_same_v<decltype(nn::LSTMOptions(1, 2).num_layers(2)), nn::LSTMOptions&>);
  static_assert(std::is_same_v<decltype(nn::GRUCellOptions(1, 2).bias(false)), nn::GRUCellOptions&>);
  CHECK(lstm.input_size() == 4);
  CHECK(lstm.hidden_size() == 8);
  CHECK(lstm.num_layers() == 2);
  CHECK(lstm.proj_size() == 3);
  CHECK(lstm.batch_first());
  CHECK_FALSE(lstm.bias());
  CHECK(lstm.dropout() == 0.25);
  CHECK(lstm.bidirectional());
  CHECK(lstm.input_dropout() == 0.1);
  CHECK(lstm.recurrent_dropout() == 0.2);

  nn::RNNOptions rnn = nn::RNNOptions(2, 3).num_layers(3).nonlinearity(nn::RNNNonlinearity::relu).bias(false);
  CHECK(rnn.num_layers() == 3);
  CHECK(rnn.nonlinearity() == nn::RNNNonlinearity::relu);
  CHECK_FALSE(rnn.bias());
  nn::GRUOptions gru = nn::GRUOptions(2, 3).reset_after(false).batch_first(true).hidden_size(5);
  CHECK_FALSE(gru.reset_after());
  CHECK(gru.batch_first());
  CHECK(gru.hidden_size() == 5);
  nn::RecurrentOptions rec = nn::RecurrentOptions::from(lstm);
  CHECK(rec.num_layers() == 2);
  CHECK(rec.bidirectional());
  CHECK(rec.recurrent_dropout() == 0.2);

  nn::RNNCellOptions rc = nn::RNNCellOptions(2, 3).bias(false).nonlinearity(nn::RNNNonlinearity::relu);
  CHECK_FALSE(rc.bias());
  CHECK(rc.nonlinearity() == nn::RNNNonlinearity::relu);
  nn::LSTMCellOptions lc = nn::LSTMCellOptions(2, 3).bias(false).proj_size(2).input_size(6);
  CHECK(lc.proj_size() == 2);
  CHECK(lc.input_size() == 6);
  nn::GRUCellOptions gc = nn::GRUCellOptions(2, 3).bias(false).reset_after(false);
  CHECK_FALSE(gc.bias());
  CHECK_FALSE(gc.reset_after());
  static_assert(!public_num_layers<nn::LSTMOptions>);
  static_assert(!public_bias<nn::GRUCellOptions>);
}

TEST_CASE("XGRAD_ARG: core and nn options read back what was set") {
  GradcheckOptions g = GradcheckOptions().eps(1e-7).atol(1e-6).rtol(1e-4).allow_zero_gradient(true);
  CHECK(g.eps() == 1e-7);
  CHECK(g.atol() == 1e-6);
  CHECK(g.rtol() == 1e-4);
  CHECK(g.allow_zero_gradient());
  CHECK(GradcheckOptions().eps() == 1e-6);
  static_assert(!public_eps<GradcheckOptions>);

  nn::EmbeddingOptions e = nn::EmbeddingOptions(10, 4).padding_idx(0).embedding_dim(5);
  CHECK(e.num_embeddings() == 10);
  CHECK(e.embedding_dim() == 5);
  CHECK(e.padding_idx() == 0);
  CHECK_FALSE(nn::EmbeddingOptions(1, 1).padding_idx().has_value());

  nn::LayerNormOptions ln = nn::LayerNormOptions({4}).eps(1e-6).elementwise_affine(false);
  CHECK(ln.normalized_shape() == Shape{4});
  CHECK(ln.eps() == 1e-6);
  CHECK_FALSE(ln.elementwise_affine());

  Tensor w = full({3}, 2.0);
  nn::CrossEntropyOptions ce =
      nn::CrossEntropyOptions().weight(w).ignore_index(0).label_smoothing(0.1).reduction(nn::Reduction::sum);
  CHECK(ce.weight().numel() == 3);
  CHECK(ce.ignore_index() == 0);
  CHECK(ce.label_smoothing() == 0.1);
  CHECK(ce.reduction() == nn::Reduction::sum);
  nn::NLLLossOptions nll = nn::NLLLossOptions().ignore_index(-1).reduction(nn::Reduction::none);
  CHECK(nll.ignore_index() == -1);
  CHECK(nll.reduction() == nn::Reduction::none);
  CHECK_FALSE(nll.weight().defined());
  nn::BCEWithLogitsOptions bce = nn::BCEWithLogitsOptions().pos_weight(w).reduction(nn::Reduction::sum);
  CHECK(bce.pos_weight().numel() == 3);
  CHECK_FALSE(bce.weight().defined());
  static_assert(!public_ignore_index<nn::CrossEntropyOptions>);
}

TEST_CASE("XGRAD_ARG: optim and train options read back what was set") {
  optim::AdamOptions adam = optim::AdamOptions(0.01).betas({0.8, 0.9}).eps(1e-6).weight_decay(0.1).amsgrad(true);
  CHECK(adam.lr() == 0.01);
  CHECK(adam.betas() == optim::Betas{0.8, 0.9});
  CHECK(adam.amsgrad());
  CHECK(optim::SGDOptions(0.1).momentum(0.9).nesterov(true).nesterov());
  CHECK(optim::RMSpropOptions::keras().convention() == optim::RMSpropConvention::keras);
  CHECK(optim::AdagradOptions().lr_decay(0.5).lr_decay() == 0.5);
  optim::LinearLROptions lin = optim::LinearLROptions().start_factor(0.1).total_iters(3);
  CHECK(lin.start_factor() == 0.1);
  CHECK(lin.total_iters() == 3);
  optim::ReduceLROnPlateauOptions plateau = optim::ReduceLROnPlateauOptions().min_lr(1e-5).patience(2);
  CHECK(plateau.min_lr() == std::vector<double>{1e-5});
  CHECK(plateau.patience() == 2);
  static_assert(!public_momentum<optim::SGDOptions>);

  train::FitOptions fit = train::FitOptions().epochs(3).validation_split(0.2).metrics({"accuracy"}).verbose(false)
                              .clip_grad_norm(1.0).checkpoint("ckpt.safetensors").resume(true).log_dir("runs");
  CHECK(fit.epochs() == 3);
  CHECK(fit.validation_split() == 0.2);
  CHECK(fit.metrics() == std::vector<std::string>{"accuracy"});
  CHECK_FALSE(fit.verbose());
  CHECK(fit.clip_grad_norm() == 1.0);
  CHECK(fit.checkpoint() == "ckpt.safetensors");
  CHECK(fit.resume());
  CHECK(fit.log_dir() == "runs");
  CHECK(fit.validation() == nullptr);
  CHECK(fit.callbacks().empty());
  CHECK(fit.process_group() == nullptr);
  static_assert(!public_epochs<train::FitOptions>);

  train::EarlyStoppingOptions es =
      train::EarlyStoppingOptions().monitor("loss").mode(train::Mode::min).patience(2).min_delta(0.01)
          .restore_best_weights(true);
  CHECK(es.monitor() == "loss");
  CHECK(es.mode() == train::Mode::min);
  CHECK(es.patience() == 2);
  CHECK(es.min_delta() == 0.01);
  CHECK(es.restore_best_weights());
  static_assert(!public_patience<train::EarlyStoppingOptions>);

  train::LoaderOptions lo = train::LoaderOptions().batch_size(8).shuffle(true).seed(7).drop_last(true).trim(false);
  CHECK(lo.batch_size() == 8);
  CHECK(lo.shuffle());
  CHECK(lo.seed() == 7u);
  CHECK(lo.drop_last());
  CHECK_FALSE(lo.trim());
  train::PadOptions pad = train::PadOptions().maxlen(5).padding(train::Side::post).truncating(train::Side::post).value(9);
  CHECK(pad.maxlen() == 5);
  CHECK(pad.padding() == train::Side::post);
  CHECK(pad.truncating() == train::Side::post);
  CHECK(pad.value() == 9);

  train::PlotOptions plot = train::PlotOptions().title("t").xlabel("x").ylabel("y").x_column(2).y_columns({3, 4})
                                .log_y(true).points(true).size(640, 480);
  CHECK(plot.title() == "t");
  CHECK(plot.y_columns() == std::vector<int>{3, 4});
  CHECK(plot.width() == 640);
  CHECK(plot.height() == 480);
  CHECK(plot.log_y());
  static_assert(!public_width<train::PlotOptions>);

  train::ProgressOptions progress =
      train::ProgressOptions().mode(train::ProgressOptions::Mode::quiet).out(stderr).line_interval(1.0).width(10);
  CHECK(progress.mode() == train::ProgressOptions::Mode::quiet);
  CHECK(progress.out() == stderr);
  CHECK(progress.line_interval() == 1.0);
  CHECK(progress.width() == 10);
  static_assert(!public_out<train::ProgressOptions>);
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The XGRAD_ARG names declared in `struct <name> ... };` of a header's text.
std::set<std::string> declared_args(const std::string& header, const std::string& name) {
  const auto begin = header.find("struct " + name + " ");
  REQUIRE_MESSAGE(begin != std::string::npos, name << " not found");
  const auto end = header.find("\n};", begin);
  const std::string body = header.substr(begin, end - begin);
  std::set<std::string> out;
  static const std::regex arg(R"(XGRAD_ARG\(\s*[^,]+,\s*(\w+)\s*\))");
  for (auto it = std::sregex_iterator(body.begin(), body.end(), arg); it != std::sregex_iterator(); ++it)
    out.insert((*it)[1].str());
  return out;
}

// The optimizer-table row of docs/optimizers.md for `optimizer`: "| `Adam` | ... |".
std::string readme_row(const std::string& readme, const std::string& optimizer) {
  const auto at = readme.find("| `" + optimizer + "` | ");
  REQUIRE_MESSAGE(at != std::string::npos, "docs/optimizers.md has no row for " << optimizer);
  return readme.substr(at, readme.find('\n', at) - at);
}

template <class Options>
void check_one_list(const std::string& header_file, const std::string& optimizer, const Options& options,
                    const std::vector<std::string>& saved_keys) {
  CAPTURE(optimizer);
  // The state-dict names are a file format: files saved before must load as they did.
  std::vector<std::string> keys;
  std::set<std::string> args;
  for (const auto& f : Options::fields()) {
    keys.push_back(f.key);
    args.insert(f.arg);
  }
  CHECK(keys == saved_keys);
  std::vector<std::string> value_names;
  for (const auto& [name, v] : options.values()) value_names.push_back(name);
  CHECK(value_names == saved_keys);

  // Every XGRAD_ARG of the struct is in the table, and nothing else is.
  const std::string header = read_text(std::string(XGRAD_SOURCE_DIR) + "/optim/include/xgrad/optim/" + header_file);
  CHECK(declared_args(header, Options::type_name) == args);

  // The guide's row names every option but the constructor's lr.
  const std::string row = readme_row(read_text(std::string(XGRAD_SOURCE_DIR) + "/docs/optimizers.md"), optimizer);
  for (const std::string& arg : args) {
    if (arg == "lr") continue;
    CHECK_MESSAGE(std::regex_search(row, std::regex("\\b" + arg + "\\b")), "docs/optimizers.md's " << optimizer << " row lacks " << arg);
  }

  // set_value(key) changes that option alone, and values() reads it back.
  const auto before = options.values();
  for (std::size_t i = 0; i < saved_keys.size(); ++i) {
    CAPTURE(saved_keys[i]);
    Options changed = options;
    changed.set_value(saved_keys[i], 1.0);
    const auto after = changed.values();
    for (std::size_t j = 0; j < after.size(); ++j) CHECK(after[j].second == (i == j ? 1.0 : before[j].second));
  }
  Options changed = options;
  CHECK_THROWS_WITH_AS(changed.set_value("nope", 1.0),
                       (std::string(Options::type_name) + ": no hyper-parameter called 'nope'").c_str(), Error);
}

}  // namespace

TEST_CASE("optimizer options: one list gives values(), set_value(), the state dict and docs/optimizers.md's table") {
  check_one_list("sgd.hpp", "SGD", optim::SGDOptions(0.1),
                 {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"});
  const std::vector<std::string> adam_keys{"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"};
  check_one_list("adam.hpp", "Adam", optim::AdamOptions(), adam_keys);
  check_one_list("adam.hpp", "AdamW", optim::AdamWOptions(), adam_keys);
  check_one_list("rmsprop.hpp", "RMSprop", optim::RMSpropOptions(),
                 {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize", "keras"});
  check_one_list("adagrad.hpp", "Adagrad", optim::AdagradOptions(),
                 {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize"});
}

TEST_CASE("optimizer options: pair and enum fields convert as the saved files expect") {
  optim::AdamOptions adam;
  adam.set_value("beta2", 0.98);
  CHECK(adam.betas() == optim::Betas{0.9, 0.98});
  adam.set_value("amsgrad", 2.0);  // any nonzero number is true, as before
  CHECK(adam.amsgrad());
  optim::RMSpropOptions rms;
  rms.set_value("keras", 1.0);
  CHECK(rms.convention() == optim::RMSpropConvention::keras);
  CHECK(rms.values().back() == std::pair<std::string, double>{"keras", 1.0});
  rms.set_value("keras", 0.0);
  CHECK(rms.convention() == optim::RMSpropConvention::pytorch);
  optim::SGDOptions sgd(0.1);
  sgd.set_lr(0.05);  // what a scheduler does, through the OptimizerOptions interface
  CHECK(sgd.lr() == 0.05);
  CHECK(sgd.get_lr() == 0.05);
}
