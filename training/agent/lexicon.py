"""The words and sentence frames of the agent's synthetic conversations, in English, Japanese and Chinese.

Every frame list comes in two parts: `train` frames teach, `held` frames are only ever used by the
held-back test set, so that it measures phrasings the adapter never saw. Some lists have a third,
`later`: frames taught from the adapter's second lesson on (training/agent/train.py), `third`
from the third on and `sixth` from the sixth on, kept apart so that an earlier lesson's data, and so
its checkpoint, stays exactly what it was. The world's own words (colours, shapes, sizes, positions)
are shared: an unseen synonym could not be known.

Slots: {o} an object as the user names it, {c} a colour, {s} a shape, {p} a place, {b} a background,
{n} a new object, {x} a scene's objects, {e} an edit sentence, {k} an ordinal, {i} an image id.

Long on purpose: it is data, one table per language side by side, so that a frame added in one
language is easy to see missing in the others.
"""

from __future__ import annotations

from dataclasses import dataclass

Cell = tuple[int, int]


@dataclass(frozen=True)
class Frames:
    """Sentence frames: the ones training sees, and the ones kept for the held-back set."""

    train: tuple[str, ...]
    held: tuple[str, ...]
    later: tuple[str, ...] = ()  # taught from the second lesson on
    third: tuple[str, ...] = ()  # taught from the third lesson on
    sixth: tuple[str, ...] = ()  # taught from the sixth lesson on

    def pick(self, held: bool, lesson: int = 1) -> tuple[str, ...]:
        """The frames of one split (and, for training, one lesson)."""
        if held and self.held:
            return self.held
        return (
            self.train + (self.later if lesson > 1 else ()) + (self.third if lesson > 2 else ())
            + (self.sixth if lesson > 5 else ())
        )  # fmt: skip


@dataclass(frozen=True)
class Tongue:
    """One language's words and frames."""

    code: str
    colours: dict[str, tuple[str, ...]]  # an object's colour, as it stands before a shape
    colour_nouns: dict[str, tuple[str, ...]]  # a colour on its own ("blue", "青", "蓝色"), backgrounds too
    shapes: dict[str, tuple[str, ...]]
    sizes: dict[str, tuple[str, ...]]
    at: dict[Cell, tuple[str, ...]]  # where something is
    to: dict[Cell, tuple[str, ...]]  # where something goes
    obj: Frames  # one object: {size} {colour} {shape} {pos}
    obj_bare: Frames  # one object where size or place are left to the defaults ({size}/{pos} may be empty)
    joins: tuple[str, ...]  # between objects; the last join is taken from `last_joins`
    last_joins: tuple[str, ...]
    with_bg: Frames  # {x} the objects and {b} the background, or {t} a whole sentence and {b}
    request: Frames  # {x}
    recolour: Frames  # {o} -> {c}
    reshape: Frames  # {o} -> {s}
    move: Frames  # {o} -> {p}
    grow: Frames  # {o} bigger
    shrink: Frames  # {o} smaller
    add: Frames  # {n}
    remove: Frames  # {o}
    background: Frames  # {b}
    the_shape: tuple[str, ...]  # {s}: the only object of that shape
    the_colour_shape: tuple[str, ...]  # {c} {s}
    the_colour: tuple[str, ...]  # {c}: "the red one"
    it: tuple[str, ...]  # the only object
    last_ref: Frames  # {e}: "in the last picture, {e}"
    ordinal_ref: Frames  # {k} {e}
    id_ref: Frames  # {i} {e}
    ordinals: tuple[str, ...]  # first, second, third, fourth
    chat: dict[str, Frames]  # category -> lines
    chat_reply: dict[str, str]
    outside: Frames  # requests the world cannot draw
    outside_reply: str
    drawn: str  # the reply posted with a new picture
    edited: str  # the reply posted with an edit
    # The request frames the out-of-world lines are typed in ("draw a dragon", "a red car in the center"):
    # one-object requests said bare in them teach the model to tell "draw a red circle" from "draw a pink square".
    bare: tuple[str, ...] = ()


POSITIONS_EN: dict[Cell, tuple[str, ...]] = {
    (0, 0): ("at the top left", "in the upper left", "in the top left corner", "top left"),
    (0, 1): ("at the top", "at the top center", "at the top middle", "up top"),
    (0, 2): ("at the top right", "in the upper right", "in the top right corner", "top right"),
    (1, 0): ("on the left", "at the left", "on the left side", "left"),
    (1, 1): ("in the center", "in the middle", "in the centre", "at the center"),
    (1, 2): ("on the right", "at the right", "on the right side", "right"),
    (2, 0): ("at the bottom left", "in the lower left", "in the bottom left corner", "bottom left"),
    (2, 1): ("at the bottom", "at the bottom center", "at the bottom middle", "down at the bottom"),
    (2, 2): ("at the bottom right", "in the lower right", "in the bottom right corner", "bottom right"),
}
TO_EN: dict[Cell, tuple[str, ...]] = {
    (0, 0): ("to the top left", "to the upper left", "to the top left corner"),
    (0, 1): ("to the top", "to the top center", "up to the top middle"),
    (0, 2): ("to the top right", "to the upper right", "to the top right corner"),
    (1, 0): ("to the left", "to the left side", "over to the left"),
    (1, 1): ("to the center", "to the middle", "to the centre"),
    (1, 2): ("to the right", "to the right side", "over to the right"),
    (2, 0): ("to the bottom left", "to the lower left", "to the bottom left corner"),
    (2, 1): ("to the bottom", "to the bottom center", "down to the bottom middle"),
    (2, 2): ("to the bottom right", "to the lower right", "to the bottom right corner"),
}
_EN_COLOURS = {
    "red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",), "purple": ("purple",),
    "white": ("white",), "gray": ("gray", "grey"), "black": ("black",),
}  # fmt: skip

ENGLISH = Tongue(
    code="en",
    colours=_EN_COLOURS,
    colour_nouns=_EN_COLOURS,
    shapes={"circle": ("circle", "circle", "disc"), "square": ("square", "square", "box"), "triangle": ("triangle",)},
    sizes={"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")},
    at=POSITIONS_EN,
    to=TO_EN,
    obj=Frames(
        train=(
            "a {size} {colour} {shape} {pos}",
            "a {size} {colour} {shape} {pos}",
            "one {size} {colour} {shape} {pos}",
            "{pos} a {size} {colour} {shape}",
            "a {size} {shape} in {colour} {pos}",
            "a {colour} {size} {shape} {pos}",
        ),
        held=("a {size}, {colour} {shape} {pos}", "a {colour} {shape}, {size}, {pos}"),
        # The size after the shape: lost or swapped in 11 of 13 English misses end to end (docs/notes.md).
        # (None starts with the place: after a comma list's ", {size}" it would read as the held frame's.)
        sixth=("a {colour} {shape} {pos}, {size}", "a {colour} {shape} that is {size}, {pos}"),
    ),
    obj_bare=Frames(
        train=("a {size} {colour} {shape} {pos}", "one {size} {colour} {shape} {pos}"),
        held=(),
        sixth=("a {colour} {shape}, {size}",),
    ),
    joins=(", ", ", ", " and ", "; "),
    last_joins=(" and ", ", and ", " plus ", " and also "),
    with_bg=Frames(
        train=(
            "{x} on a {b} background",
            "{x}, on a {b} background",
            "{x} with a {b} background",
            "{x} on {b}",
            "a {b} background with {x}",
            "{x}, {b} background",
            "{t}. Background: {b}",
            "{t}, on a plain {b} background",
            "{t}, and make the background {b}",
        ),
        held=("{x} against a {b} background", "{t}. The background should be {b}", "{x}, all on {b}"),
    ),
    request=Frames(
        train=(
            "draw {x}",
            "Draw {x}.",
            "please draw {x}",
            "can you draw {x}?",
            "could you paint {x}?",
            "I'd like {x}",
            "make me a picture of {x}",
            "show me {x}",
            "{x}",
            "sketch {x} please",
            "give me {x}",
            "I want a picture with {x}",
            "draw me {x}, thanks",
            "paint {x}",
        ),
        held=("would you mind drawing {x}?", "how about {x}", "paint a picture: {x}", "create an image of {x}"),
    ),
    recolour=Frames(
        train=(
            "make {o} {c}",
            "change {o} to {c}",
            "turn {o} {c}",
            "can you make {o} {c}?",
            "paint {o} {c}",
            "color {o} {c} instead",
        ),
        held=("I want {o} in {c}", "recolor {o} to {c} please"),
        later=("could you change {o} to {c}?", "let's make {o} {c}", "I'd like {o} to be {c}", "switch {o} to {c}"),
    ),
    reshape=Frames(
        train=("make {o} a {s}", "turn {o} into a {s}", "change {o} to a {s}", "replace {o} with a {s}"),
        held=("can {o} be a {s} instead?",),
        later=("could you make {o} a {s}?", "swap {o} for a {s}", "I'd like {o} as a {s}", "let's turn {o} into a {s}"),
    ),
    move=Frames(
        train=("move {o} {p}", "put {o} {p}", "shift {o} {p}", "can you move {o} {p}?"),
        held=("drag {o} {p}",),
        later=("place {o} {p}", "could you put {o} {p}?", "{o} goes {p}", "let's move {o} {p}"),
    ),
    grow=Frames(
        train=("make {o} bigger", "make {o} larger", "enlarge {o}", "make {o} big", "make {o} large"),
        held=("{o} should be bigger",),
        later=("could you make {o} bigger?", "scale up {o}", "bigger {o}, please", "make {o} a bit bigger"),
    ),
    shrink=Frames(
        train=("make {o} smaller", "shrink {o}", "make {o} small", "make {o} little"),
        held=("{o} should be smaller",),
        later=("could you make {o} smaller?", "scale down {o}", "smaller {o}, please", "make {o} a bit smaller"),
    ),
    add=Frames(
        train=("add {n}", "also draw {n}", "put {n} in too", "add {n} as well", "now add {n}"),
        held=("include {n} too",),
        later=("could you add {n}?", "draw {n} too", "I'd like {n} as well", "and {n} please", "throw in {n}"),
    ),
    remove=Frames(
        train=("remove {o}", "delete {o}", "take out {o}", "get rid of {o}", "erase {o}"),
        held=("I don't want {o} anymore",),
        later=("could you remove {o}?", "lose {o}", "without {o}, please", "{o} can go", "drop {o}"),
        third=("I don't need {o}", "we don't need {o}", "no {o}, please", "{o} isn't needed", "leave out {o}"),
    ),
    background=Frames(
        train=(
            "make the background {b}",
            "change the background to {b}",
            "use a {b} background",
            "put it on a {b} background",
            "turn the background {b}",
        ),
        held=("the background should be {b} now",),
        later=(
            "could you make the background {b}?",
            "a {b} background, please",
            "I'd like the background {b}",
            "swap the background for {b}",
            "set the background to {b}",
        ),
    ),
    the_shape=("the {s}",),
    the_colour_shape=("the {c} {s}",),
    the_colour=("the {c} one", "the {c} shape"),
    it=("it",),
    last_ref=Frames(
        train=("in the last picture, {e}", "{e} in that one", "in the latest one, {e}"),
        held=("for the previous image: {e}",),
        later=("on the last one, {e}", "{e} on the latest picture"),
    ),
    ordinal_ref=Frames(
        train=("in the {k} one, {e}", "{e} in the {k} picture", "the {k} image: {e}"),
        held=("take the {k} picture and {e}",),
        later=("on the {k} picture, {e}", "for the {k} one: {e}"),
    ),
    id_ref=Frames(
        train=("edit {i}: {e}", "in {i}, {e}"), held=("for image {i}, {e}",), later=("{i}: {e}", "on {i}, {e}")
    ),
    ordinals=("first", "second", "third", "fourth"),
    chat={
        "greet": Frames(
            train=("hello", "hi", "hi there!", "hey", "good morning", "Hello, who are you?", "yo"),
            held=("good evening!", "hiya, anyone there?", "greetings, bot"),
        ),
        "thanks": Frames(
            train=("thanks!", "thank you", "thank you so much", "nice, thanks", "great job", "cool, I love it"),
            held=("much appreciated", "awesome, cheers", "that's perfect, ty"),
        ),
        "ask": Frames(
            train=(
                "what can you draw?",
                "who are you?",
                "help",
                "how does this work?",
                "what do you know?",
                "what are you able to make?",
                "what colours do you have?",
            ),
            held=("what kinds of pictures can you make?", "tell me what you can do", "which shapes do you know?"),
        ),
        "bye": Frames(
            train=("bye", "goodbye!", "see you later", "good night"), held=("gotta go, bye", "catch you later")
        ),
    },
    chat_reply={
        "greet": "Hello! I'm egaku. I draw circles, squares and triangles in five colours. What shall I draw?",
        "thanks": "You're welcome! Ask me for more circles, squares or triangles any time.",
        "ask": "I draw circles, squares and triangles, small or large, in red, green, blue, yellow or purple, "
        "on a plain background.",
        "bye": "Bye! Come back for more circles, squares and triangles.",
    },
    outside=Frames(
        train=(
            "draw a dragon",
            "paint a cat on a sofa",
            "draw a sunset over the sea",
            "can you draw a portrait of my mom?",
            "a red car in the center",
            "draw a blue star",
            "draw a green hexagon",
            "draw an orange circle",
            "draw a pink square",
            "a photo of Mount Fuji",
            "draw a house with a garden",
            "draw a purple heart",
            "make a logo for my band",
            "draw a squirrel king",
            "paint a landscape in watercolour",
            "draw a brown dog at the top left",
        ),
        held=(
            "draw a unicorn",
            "could you paint the Eiffel tower at night?",
            "draw a yellow banana",
            "draw a pentagon in the middle",
        ),
    ),
    outside_reply="Sorry, this built-in model knows only shapes, colours and positions. "
    "Configure a real model to draw anything else.",
    drawn="Here it is!",
    edited="Done, here is the change.",
    bare=("draw {x}", "paint {x}", "{x}"),
)

_JA_AT: dict[Cell, tuple[str, ...]] = {
    (0, 0): ("左上",),
    (0, 1): ("上", "上の真ん中", "上部中央"),
    (0, 2): ("右上",),
    (1, 0): ("左", "左側"),
    (1, 1): ("真ん中", "中央", "中心"),
    (1, 2): ("右", "右側"),
    (2, 0): ("左下",),
    (2, 1): ("下", "下の真ん中", "下部中央"),
    (2, 2): ("右下",),
}
JAPANESE = Tongue(
    code="ja",
    colours={
        "red": ("赤い", "赤の", "赤色の"),
        "green": ("緑の", "緑色の"),
        "blue": ("青い", "青の", "青色の"),
        "yellow": ("黄色い", "黄色の"),
        "purple": ("紫の", "紫色の"),
    },
    colour_nouns={
        "red": ("赤", "赤色"),
        "green": ("緑", "緑色"),
        "blue": ("青", "青色"),
        "yellow": ("黄色",),
        "purple": ("紫", "紫色"),
        "white": ("白", "白色"),
        "gray": ("灰色", "グレー"),
        "black": ("黒", "黒色"),
    },
    shapes={"circle": ("丸", "円"), "square": ("四角", "正方形", "四角形"), "triangle": ("三角", "三角形")},
    sizes={"small": ("小さい", "小さな"), "large": ("大きい", "大きな")},
    at=_JA_AT,
    to=_JA_AT,
    obj=Frames(
        train=("{pos}に{size}{colour}{shape}", "{pos}の{size}{colour}{shape}", "{pos}に{size}{colour}{shape}"),
        held=("{pos}には{size}{colour}{shape}",),
    ),
    obj_bare=Frames(train=("{pos}{size}{colour}{shape}",), held=()),
    joins=("と", "、", "、それと"),
    last_joins=("と", "、", "、それから"),
    with_bg=Frames(
        train=(
            "{b}の背景に{x}",
            "背景は{b}で、{x}",
            "{b}背景に{x}",
            "{t}。背景は{b}で",
            "{t}、背景は{b}にして",
            "{t}、背景を{b}で",
        ),
        held=("{t}。背景の色は{b}がいいです", "背景を{b}にして{x}"),
        # Begun as a background edit is, then new objects: after pictures these kept the old objects (docs/notes.md).
        sixth=("背景は{b}にして、{x}", "背景を{b}に。{x}"),
    ),
    request=Frames(
        train=(
            "{x}を描いて",
            "{x}を描いてください",
            "{x}をお願いします",
            "{x}の絵を描いて",
            "{x}を描いてくれる？",
            "{x}",
            "{x}を描いてほしいです",
            "{x}を書いて",
        ),
        held=("{x}を描いていただけますか", "{x}の絵が欲しいな", "{x}の絵をください"),
        sixth=("{x}の絵がほしい", "{x}の絵をお願いします", "{x}の絵を見たいです"),
    ),
    recolour=Frames(
        train=("{o}を{c}にして", "{o}を{c}に変えて", "{o}の色を{c}にして", "{o}の色を{c}に変えてください"),
        held=("{o}は{c}がいいな",),
        later=(
            "{o}を{c}に塗って",
            "{o}は{c}にして",
            "{o}を{c}にしてほしい",
            "{o}の色は{c}で",
            "{o}を{c}にしてくれる？",
        ),
    ),
    reshape=Frames(
        train=("{o}を{s}にして", "{o}を{s}に変えて", "{o}を{s}に変更して"),
        held=("{o}の代わりに{s}にしてください",),
        later=("{o}は{s}にして", "{o}を{s}にしてほしい", "{o}を{s}に替えてください", "{o}を{s}にしてくれる？"),
    ),
    move=Frames(
        train=("{o}を{p}に動かして", "{o}を{p}に移動して", "{o}を{p}に移して"),
        held=("{o}は{p}に置いて",),
        later=("{o}を{p}へ動かして", "{o}は{p}に動かして", "{o}を{p}に持っていって", "{o}を{p}に移動してほしい"),
    ),
    grow=Frames(
        train=("{o}を大きくして", "{o}をもっと大きく", "{o}を大きくしてください"),
        held=("{o}を拡大して",),
        later=("{o}は大きくして", "{o}をもう少し大きくして", "{o}を大きくしてほしい", "{o}を大きめにして"),
    ),
    shrink=Frames(
        train=("{o}を小さくして", "{o}をもっと小さく", "{o}を小さくしてください"),
        held=("{o}を縮めて",),
        later=("{o}は小さくして", "{o}をもう少し小さくして", "{o}を小さくしてほしい", "{o}を小さめにして"),
    ),
    add=Frames(
        train=("{n}を追加して", "{n}も描いて", "{n}を足して", "{n}も描き足して"),
        held=("{n}も入れてください",),
        later=("{n}を加えて", "{n}もお願い", "{n}を描き加えてください", "{n}も追加してほしい"),
    ),
    remove=Frames(
        train=("{o}を消して", "{o}を削除して", "{o}を取って"),
        held=("{o}はいらない",),
        later=("{o}を取り除いて", "{o}をなくして", "{o}を消してほしい", "{o}は消して"),
        third=("{o}は不要です", "{o}はなしで", "{o}はなくていい", "{o}は外して"),
    ),
    background=Frames(
        train=("背景を{b}にして", "背景の色を{b}に変えて", "背景を{b}に変更して"),
        held=("背景は{b}がいい",),
        later=(
            "背景は{b}にして",
            "背景を{b}に塗って",
            "背景を{b}にしてほしい",
            "背景の色は{b}で",
            "背景を{b}に替えてください",
        ),
    ),
    the_shape=("{s}",),
    the_colour_shape=("{c}{s}",),
    the_colour=("{c}の図形",),
    it=("それ",),
    last_ref=Frames(
        train=("さっきの絵の{e}", "最後の絵で、{e}"),
        held=("前の絵、{e}",),
        later=("さっきの絵で、{e}", "最新の絵の{e}"),
    ),
    ordinal_ref=Frames(
        train=("{k}枚目の絵で、{e}", "{k}枚目の{e}"),
        held=("{k}番目の絵の{e}",),
        later=("{k}枚目で、{e}", "{k}枚目の絵の{e}"),
    ),
    id_ref=Frames(train=("{i}の絵で、{e}", "{i}: {e}"), held=("画像{i}で{e}",), later=("{i}で、{e}", "{i}の{e}")),
    ordinals=("1", "2", "3", "4"),
    chat={
        "greet": Frames(
            train=("こんにちは", "やあ", "おはよう", "こんばんは！", "はじめまして", "あなたは誰？"),
            held=("どうも、よろしく", "こんにちは、誰かいますか？", "どうもー"),
        ),
        "thanks": Frames(
            train=("ありがとう", "ありがとうございます！", "すごい、ありがとう", "いいね"),
            held=("助かりました", "サンキュー！", "完璧です、感謝します"),
        ),
        "ask": Frames(
            train=("何が描けるの？", "何ができますか？", "使い方を教えて", "どんな絵が描ける？", "ヘルプ"),
            held=("どういう絵を描いてくれるの？", "できることを教えてください", "どんな形を知ってる？"),
        ),
        "bye": Frames(train=("さようなら", "またね", "おやすみ"), held=("じゃあね", "そろそろ行くね、バイバイ")),
    },
    chat_reply={
        "greet": "こんにちは！egakuです。丸・四角・三角を五つの色で描きます。何を描きましょうか？",
        "thanks": "どういたしまして！丸・四角・三角なら、いつでも描きます。",
        "ask": "丸・四角・三角を、大小二つの大きさと赤・緑・青・黄色・紫の五色で描けます。",
        "bye": "さようなら！また丸や四角や三角を描きましょう。",
    },
    outside=Frames(
        train=(
            "ドラゴンを描いて",
            "ソファの上の猫を描いて",
            "海に沈む夕日の絵をお願いします",
            "リスの王を描いて",
            "オレンジ色の丸を描いて",
            "星を描いて",
            "富士山の写真をください",
            "ピンクの四角を描いて",
            "家と庭の絵を描いて",
            "水彩画で風景を描いて",
        ),
        held=("ユニコーンを描いてください", "夜の東京タワーを描いて", "バナナの絵をお願いします"),
    ),
    outside_reply="ごめんなさい、この内蔵モデルは形と色と位置しか知りません。ほかのものを描くには本物のモデルを設定してください。",
    drawn="描きました！",
    edited="変更しました！",
    bare=("{x}を描いて",),
)

_ZH_AT: dict[Cell, tuple[str, ...]] = {
    (0, 0): ("左上角", "左上方"),
    (0, 1): ("上方", "顶部中间", "正上方"),
    (0, 2): ("右上角", "右上方"),
    (1, 0): ("左边", "左侧"),
    (1, 1): ("中间", "中央", "正中间"),
    (1, 2): ("右边", "右侧"),
    (2, 0): ("左下角", "左下方"),
    (2, 1): ("下方", "底部中间", "正下方"),
    (2, 2): ("右下角", "右下方"),
}
_ZH_COLOURS = {
    "red": ("红色", "红"), "green": ("绿色", "绿"), "blue": ("蓝色", "蓝"), "yellow": ("黄色", "黄"),
    "purple": ("紫色", "紫"), "white": ("白色", "白"), "gray": ("灰色",), "black": ("黑色", "黑"),
}  # fmt: skip
CHINESE = Tongue(
    code="zh",
    colours={k: (*v, f"{v[0]}的") for k, v in _ZH_COLOURS.items()},
    colour_nouns=_ZH_COLOURS,
    shapes={"circle": ("圆", "圆形", "圆圈"), "square": ("正方形", "方块", "方形"), "triangle": ("三角形", "三角")},
    sizes={"small": ("小", "小的"), "large": ("大", "大的")},
    at=_ZH_AT,
    to=_ZH_AT,
    obj=Frames(
        train=("{pos}一个{size}{colour}{shape}", "一个{size}{colour}{shape}在{pos}", "{pos}的{size}{colour}{shape}"),
        held=("在{pos}放一个{size}{colour}{shape}",),
    ),
    obj_bare=Frames(train=("{pos}一个{size}{colour}{shape}",), held=()),
    joins=("，", "、", "和"),
    last_joins=("和", "，还有", "，再加上"),
    with_bg=Frames(
        train=("{t}，背景是{b}", "{t}，{b}背景", "背景是{b}，{t}", "在{b}背景上{t}", "{t}，背景用{b}"),
        held=("{t}，背景颜色要{b}",),
    ),
    request=Frames(
        train=(
            "画{x}",
            "请画{x}",
            "帮我画{x}",
            "给我画{x}",
            "我想要{x}",
            "{x}",
            "请帮我画一张图：{x}",
            "画一张图，{x}",
        ),
        held=("能不能画{x}？", "麻烦画一下{x}", "来一张{x}的图"),
    ),
    recolour=Frames(
        train=("把{o}改成{c}", "把{o}变成{c}的", "{o}换成{c}", "把{o}涂成{c}"),
        held=("让{o}变成{c}吧",),
        later=("请把{o}改成{c}", "{o}改成{c}吧", "我想把{o}换成{c}", "能把{o}变成{c}吗"),
    ),
    reshape=Frames(
        train=("把{o}改成{s}", "把{o}变成{s}", "{o}换成{s}"),
        held=("让{o}变成一个{s}",),
        later=("请把{o}改成{s}", "我想把{o}换成{s}", "能把{o}变成{s}吗", "{o}改成{s}吧"),
    ),
    move=Frames(
        train=("把{o}移到{p}", "把{o}挪到{p}", "把{o}放到{p}"),
        held=("{o}移动到{p}去",),
        later=("请把{o}移到{p}", "{o}挪到{p}吧", "能把{o}放到{p}吗", "我想把{o}放到{p}"),
    ),
    grow=Frames(
        train=("把{o}变大", "把{o}放大", "{o}大一点"),
        held=("让{o}大一些",),
        later=("请把{o}放大", "{o}再大一点", "能把{o}变大吗", "把{o}弄大一点"),
    ),
    shrink=Frames(
        train=("把{o}变小", "把{o}缩小", "{o}小一点"),
        held=("让{o}小一些",),
        later=("请把{o}缩小", "{o}再小一点", "能把{o}变小吗", "把{o}弄小一点"),
    ),
    add=Frames(
        train=("加{n}", "再画{n}", "添加{n}", "再加上{n}"),
        held=("还要{n}",),
        later=("请加上{n}", "也画上{n}", "再来{n}", "多画{n}"),
    ),
    remove=Frames(
        train=("把{o}删掉", "去掉{o}", "把{o}去掉", "删除{o}"),
        held=("不要{o}了",),
        later=("请删掉{o}", "把{o}拿掉", "{o}删了吧", "能去掉{o}吗"),
        third=("{o}不需要了", "{o}不用了", "别要{o}", "我不想要{o}"),
    ),
    background=Frames(
        train=("把背景改成{b}", "背景换成{b}", "把背景变成{b}"),
        held=("背景要{b}的",),
        later=("请把背景改成{b}", "背景改成{b}吧", "我想要{b}背景", "能把背景换成{b}吗", "背景用{b}"),
    ),
    the_shape=("{s}", "那个{s}"),
    the_colour_shape=("{c}的{s}", "{c}{s}"),
    the_colour=("{c}的那个",),
    it=("它",),
    last_ref=Frames(
        train=("上一张图，{e}", "刚才那张，{e}"), held=("最后那张图里，{e}",), later=("最新那张，{e}", "上一张里，{e}")
    ),
    ordinal_ref=Frames(
        train=("第{k}张图，{e}", "在第{k}张里，{e}"),
        held=("第{k}幅图：{e}",),
        later=("第{k}张：{e}", "第{k}张图里，{e}"),
    ),
    id_ref=Frames(
        train=("{i}这张图，{e}", "图{i}：{e}"), held=("编号{i}的图，{e}",), later=("{i}：{e}", "图片{i}，{e}")
    ),
    ordinals=("一", "二", "三", "四"),
    chat={
        "greet": Frames(
            train=("你好", "嗨", "早上好", "你好，你是谁？", "晚上好"),
            held=("哈喽，在吗？", "您好，请问你是？", "嘿，你好呀"),
        ),
        "thanks": Frames(train=("谢谢", "谢谢你！", "太好了，谢谢", "不错"), held=("多谢啦", "非常感谢", "真棒，感谢")),
        "ask": Frames(
            train=("你能画什么？", "你会做什么？", "怎么用？", "帮助", "你能画哪些东西？"),
            held=("你都会画些什么图？", "介绍一下你的功能", "你认识哪些形状？"),
        ),
        "bye": Frames(train=("再见", "拜拜", "晚安"), held=("我先走了，再见", "回头见")),
    },
    chat_reply={
        "greet": "你好！我是egaku。我会用五种颜色画圆形、正方形和三角形。想画什么？",
        "thanks": "不客气！想要圆形、正方形或三角形，随时告诉我。",
        "ask": "我会画大的或小的圆形、正方形和三角形，颜色有红、绿、蓝、黄、紫。",
        "bye": "再见！欢迎再来画圆形、正方形和三角形。",
    },
    outside=Frames(
        train=(
            "画一条龙",
            "画一只坐在沙发上的猫",
            "画海上的日落",
            "画一个橙色的圆",
            "画一颗星星",
            "给我一张富士山的照片",
            "画一个粉色的正方形",
            "画一座有花园的房子",
            "用水彩画一幅风景",
            "画松鼠国王",
        ),
        held=("画一只独角兽", "请画夜晚的埃菲尔铁塔", "画一根香蕉"),
    ),
    outside_reply="抱歉，这个内置模型只认识形状、颜色和位置。要画别的东西，请配置一个真正的模型。",
    drawn="画好了！",
    edited="改好了！",
    bare=("画{x}",),
)

TONGUES = {t.code: t for t in (ENGLISH, JAPANESE, CHINESE)}
