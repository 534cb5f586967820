package webbundle

import (
	"bytes"
	"strconv"
	"strings"
)

// What the files hold. Text is minified-looking: tokens of a vocabulary,
// drawn with Zipf weights and mixed with short random identifiers, which
// deflate compresses about as well as real bundler output (3 to 4 times).
// Binary files start with their format's signature and continue with
// random bytes, which do not compress, like real images and fonts.

var (
	jsTokens = strings.Fields(`function return const let var if else for while new this null
		undefined true false import export default from async await class extends super try catch
		finally throw typeof instanceof Object Array Promise Map Set JSON Math Date String Number Error
		document window console push map filter reduce forEach length prototype call apply then resolve
		reject props state render component createElement useState useEffect computed ref watch emit
		value key index item data result options config error event target defineComponent h slot
		( ) { } [ ] ; , . => = === !== && || ? : + - * / ! 0 1 2 "" '' e t n r i o a s c l u d p f`)
	cssTokens = strings.Fields(`display:flex; display:none; display:block; display:grid;
		position:absolute; position:relative; margin:0; padding:0; width:100%; height:100%;
		color:#fff; color:#1f2937; background:#f9fafb; border:1px solid #e5e7eb; border-radius:.5rem;
		font-size:.875rem; font-weight:600; line-height:1.5; align-items:center;
		justify-content:space-between; gap:1rem; z-index:10; transition:all .2s ease; opacity:0;
		opacity:1; overflow:hidden; cursor:pointer; } { .btn .card .row .col .nav .header .footer
		:hover :focus > + ~ @media (min-width:768px) var(--ion-color-primary) calc(100% - 2rem)`)
	htmlTokens = strings.Fields(`<div> </div> <span> </span> <p> </p> <a href="/products"> </a>
		<ion-button> </ion-button> <ion-item> </ion-item> <ion-label> </ion-label> <img alt="">
		<button type="button"> </button> <li> </li> <ul> </ul> class="row" class="col" class="card"
		data-v-7a3b1c Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor
		price € add to cart details reviews shipping`)
	jsonTokens = strings.Fields(`id name title description price currency EUR USD image url slug
		category tags stock available true false null 0 1 2 3 4 5 6 7 8 9 rating reviews author
		createdAt updatedAt label button cart checkout login logout settings profile`)
	svgTokens = strings.Fields(`M L C Q Z H V 0 1 2 4 6 8 12 16 20 24 .5 1.5 -1 -2 stroke-width="2"
		fill="none" stroke="currentColor" stroke-linecap="round" stroke-linejoin="round"`)

	jsCum, cssCum, htmlCum, jsonCum, svgCum = cumulative(len(jsTokens)), cumulative(len(cssTokens)),
		cumulative(len(htmlTokens)), cumulative(len(jsonTokens)), cumulative(len(svgTokens))
)

// Names, as an e-commerce Ionic/Nuxt app's build has them.
var (
	chunkNames = strings.Fields(`index vendor runtime entry app ProductCard ProductList CartDrawer
		CheckoutForm useCart useAuth useI18n router store api client swiper dayjs lodash axios
		ionic-core ion-modal ion-toast ion-datetime ion-popover ion-select IconBase BaseButton
		BaseInput Footer Header Layout default error404 account orders settings search`)
	routes      = strings.Fields(`products category account orders blog help legal stores`)
	slugs       = strings.Fields(`summer-sale sneakers jackets shirts bags watches gift-cards returns shipping faq privacy terms`)
	locales     = strings.Fields(`en de fr es it nl pt pl sv da fi nb cs hu ro el tr ja ko zh`)
	icons       = strings.Fields(`arrow-left arrow-right cart heart search user close menu star check filter share`)
	imageNames  = strings.Fields(`hero banner product thumb avatar logo promo background`)
	fontNames   = strings.Fields(`inter roboto`)
	fontWeights = strings.Fields(`400 500 600 700`)
)

type magic struct {
	ext   string
	magic []byte
}

var imageMagic = []magic{
	{".png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
	{".jpg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")},
	{".webp", []byte("RIFF\x00\x00\x00\x00WEBPVP8 ")},
}

// fillText writes n bytes of tokens joined by sep, one identifier in
// seven random, in lines of about lineLen.
func fillText(r *gen, n int, tokens []string, cum []float64, sep string, lineLen int) []byte {
	var b bytes.Buffer
	b.Grow(n + 64)
	line := 0
	for k := 0; b.Len() < n; k++ {
		var tok string
		if k%7 == 0 {
			tok = identifier(r)
		} else {
			tok = tokens[r.zipf(cum)]
		}
		b.WriteString(tok)
		line += len(tok)
		if line >= lineLen {
			b.WriteByte('\n')
			line = 0
		} else {
			b.WriteString(sep)
			line += len(sep)
		}
	}
	return b.Bytes()[:n]
}

// identifier is a short minified name: one to three of a-z, _ and $.
func identifier(r *gen) string {
	const letters = "abcdefghijklmnopqrstuvwxyz_$"
	var b [3]byte
	n := 1 + r.intn(3)
	for i := range n {
		b[i] = letters[r.intn(len(letters))]
	}
	return string(b[:n])
}

func fillJS(r *gen, n int) []byte   { return fillText(r, n, jsTokens, jsCum, " ", 2000) }
func fillCSS(r *gen, n int) []byte  { return fillText(r, n, cssTokens, cssCum, "", 1000) }
func fillHTML(r *gen, n int) []byte { return fillText(r, n, htmlTokens, htmlCum, " ", 400) }
func fillSVG(r *gen, n int) []byte  { return fillText(r, n, svgTokens, svgCum, " ", 200) }

// fillJSON writes a flat JSON object of n bytes (padded with spaces).
func fillJSON(r *gen, n int) []byte {
	var b bytes.Buffer
	b.Grow(n)
	b.WriteByte('{')
	for {
		entry := strconv.Quote(jsonTokens[r.zipf(jsonCum)]+"_"+identifier(r)) + ":" +
			strconv.Quote(jsonTokens[r.zipf(jsonCum)]+" "+jsonTokens[r.zipf(jsonCum)])
		if b.Len() > 1 {
			entry = "," + entry
		}
		if b.Len()+len(entry)+1 > n {
			break
		}
		b.WriteString(entry)
	}
	b.WriteByte('}')
	for b.Len() < n {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// fillBinary writes n bytes: the format's signature, then random bytes.
func fillBinary(r *gen, n int, m magic) []byte {
	out := make([]byte, max(n, len(m.magic)))
	copy(out, m.magic)
	for i := len(m.magic); i < len(out); i += 8 {
		v := r.p.Uint64()
		for j := 0; j < 8 && i+j < len(out); j++ {
			out[i+j] = byte(v >> (8 * j))
		}
	}
	return out
}
