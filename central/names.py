"""Word lists for synthetic records: Indonesian names, places and face-field values.

Synthetic data only; any resemblance to a real person is chance. Regency codes follow the
Kemendagri numbering for the cities and regencies listed (two digits after the province).
"""

from __future__ import annotations

# fmt: off

MALE_FIRST: tuple[str, ...] = (
    "AHMAD", "BUDI", "AGUS", "MUHAMMAD", "RUDI", "HENDRA", "DEDI", "SURYA", "ANDI", "BAMBANG",
    "JOKO", "WAYAN", "MADE", "KETUT", "YOHANES", "FRANSISKUS", "RIZKY", "FAJAR", "DIMAS",
    "IRFAN", "TAUFIK", "SLAMET", "EKO", "ARIF", "HASAN", "YUSUF", "ILHAM", "BAYU", "GEDE",
    "TEGUH", "ASEP", "UJANG", "DANIEL", "STEFANUS", "NYOMAN", "LUKMAN",
)
FEMALE_FIRST: tuple[str, ...] = (
    "SITI", "DEWI", "SRI", "NUR", "RINA", "AYU", "PUTRI", "FITRI", "WULAN", "INDAH", "LESTARI",
    "NI LUH", "KADEK", "MARIA", "THERESIA", "ANGELINA", "RATNA", "YULIANI", "NENG", "ENDANG",
    "RAHMAWATI", "ANISA", "NABILA", "SALSABILA", "KARTIKA", "MEGAWATI", "DIAN", "ELISABETH",
    "RETNO", "TITIN", "WAHYUNI", "HANDAYANI", "NOVITA", "CUT", "DWI", "TRI",
)
FAMILY: tuple[str, ...] = (
    "SUSANTO", "WIJAYA", "SAPUTRA", "SETIAWAN", "HIDAYAT", "PRATAMA", "KURNIAWAN", "NASUTION",
    "SIREGAR", "HARAHAP", "SIMANJUNTAK", "LUBIS", "PANJAITAN", "HUTAGALUNG", "SITOMPUL",
    "WIBOWO", "SANTOSO", "GUNAWAN", "RAHMAN", "HAKIM", "SUBAGYO", "SUHARTO", "PURNOMO",
    "MANURUNG", "TAMBUNAN", "MANDAGI", "TUMEWU", "LATUPEIRISSA", "PATTIASINA", "MAHULETTE",
    "DAENG", "SYAHPUTRA", "FIRMANSYAH", "RAMADHAN", "KUSUMAWARDHANI", "PERMATASARI",
    "NINGSIH", "ANGGRAINI", "MAULANA", "WIRAATMADJA", "PRAWIRANEGARA", "HADIKUSUMO",
)
#: Joined to make the very long names some citizens carry (card face must wrap them).
LONG_PARTS: tuple[str, ...] = (
    "RADEN", "MAS", "AYU", "ANAK AGUNG", "SRI", "SULTAN", "TENGKU", "HAJI", "NURUL",
    "KUSUMANINGRUM", "WIDYANINGSIH", "MANGKUNEGARA", "HAMENGKUBUWONO", "PURBANINGRAT",
    "SETYANINGRUM", "DJOJOHADIKUSUMO", "KARTASASMITA", "CAKRANINGRAT",
)
BIRTH_PLACES: tuple[str, ...] = (
    "JAKARTA", "BANDUNG", "SURABAYA", "SEMARANG", "YOGYAKARTA", "MEDAN", "MAKASSAR",
    "DENPASAR", "PALEMBANG", "PADANG", "BANJARMASIN", "PONTIANAK", "MANADO", "KUPANG",
    "AMBON", "JAYAPURA", "MALANG", "SOLO", "BOGOR", "CIREBON", "TASIKMALAYA", "PEKALONGAN",
    "KEDIRI", "JEMBER", "BANYUWANGI", "SINGARAJA", "MATARAM", "BIMA", "TERNATE", "KENDARI",
    "PALU", "GORONTALO", "SAMARINDA", "BALIKPAPAN", "PEMATANGSIANTAR", "BUKITTINGGI",
    "TANJUNG KARANG", "BANDA ACEH", "SIDOARJO", "PURWOKERTO",
)
#: province code → province name (Kemendagri)
PROVINCES: dict[str, str] = {
    "11": "ACEH", "12": "SUMATERA UTARA", "13": "SUMATERA BARAT", "16": "SUMATERA SELATAN",
    "18": "LAMPUNG", "31": "DKI JAKARTA", "32": "JAWA BARAT", "33": "JAWA TENGAH",
    "34": "DI YOGYAKARTA", "35": "JAWA TIMUR", "36": "BANTEN", "51": "BALI",
    "52": "NUSA TENGGARA BARAT", "53": "NUSA TENGGARA TIMUR", "61": "KALIMANTAN BARAT",
    "63": "KALIMANTAN SELATAN", "64": "KALIMANTAN TIMUR", "71": "SULAWESI UTARA",
    "73": "SULAWESI SELATAN", "81": "MALUKU", "94": "PAPUA",
}
#: province code → [(regency code, regency name)]
REGENCIES: dict[str, tuple[tuple[str, str], ...]] = {
    "11": (("71", "KOTA BANDA ACEH"), ("08", "ACEH BESAR")),
    "12": (("71", "KOTA MEDAN"), ("07", "DELI SERDANG"), ("72", "KOTA PEMATANGSIANTAR")),
    "13": (("71", "KOTA PADANG"), ("75", "KOTA BUKITTINGGI")),
    "16": (("71", "KOTA PALEMBANG"),),
    "18": (("71", "KOTA BANDAR LAMPUNG"), ("01", "LAMPUNG SELATAN")),
    "31": (
        ("71", "KOTA JAKARTA SELATAN"), ("72", "KOTA JAKARTA TIMUR"),
        ("73", "KOTA JAKARTA PUSAT"), ("74", "KOTA JAKARTA BARAT"), ("75", "KOTA JAKARTA UTARA"),
    ),
    "32": (
        ("01", "BOGOR"), ("04", "BANDUNG"), ("73", "KOTA BANDUNG"), ("75", "KOTA BEKASI"),
        ("06", "TASIKMALAYA"), ("74", "KOTA CIREBON"),
    ),
    "33": (("74", "KOTA SEMARANG"), ("72", "KOTA SURAKARTA"), ("02", "BANYUMAS")),
    "34": (("71", "KOTA YOGYAKARTA"), ("04", "SLEMAN"), ("02", "BANTUL")),
    "35": (("78", "KOTA SURABAYA"), ("73", "KOTA MALANG"), ("15", "SIDOARJO"), ("09", "JEMBER")),
    "36": (("71", "KOTA TANGERANG"), ("03", "TANGERANG"), ("74", "KOTA TANGERANG SELATAN")),
    "51": (("71", "KOTA DENPASAR"), ("03", "BADUNG"), ("04", "GIANYAR"), ("08", "BULELENG")),
    "52": (("71", "KOTA MATARAM"), ("01", "LOMBOK BARAT")),
    "53": (("71", "KOTA KUPANG"), ("01", "SUMBA BARAT")),
    "61": (("71", "KOTA PONTIANAK"),),
    "63": (("71", "KOTA BANJARMASIN"),),
    "64": (("72", "KOTA SAMARINDA"), ("71", "KOTA BALIKPAPAN")),
    "71": (("71", "KOTA MANADO"), ("02", "MINAHASA")),
    "73": (("71", "KOTA MAKASSAR"), ("06", "GOWA")),
    "81": (("71", "KOTA AMBON"),),
    "94": (("71", "KOTA JAYAPURA"),),
}
KECAMATAN: tuple[str, ...] = (
    "COBLONG", "SUKAJADI", "CIBEUNYING KIDUL", "KEBAYORAN BARU", "TEBET", "MENTENG",
    "GAMBIR", "CAKUNG", "GUBENG", "WONOKROMO", "TEGALSARI", "DEPOK", "MLATI", "KUTA",
    "UBUD", "DENPASAR SELATAN", "MEDAN BARU", "PANAKKUKANG", "TAMALATE", "SUNGAI KUNJANG",
    "BANJARMASIN UTARA", "PONTIANAK KOTA", "KELAPA LIMA", "SIRIMAU", "ABEPURA",
)
KEL_DESA: tuple[str, ...] = (
    "DAGO", "LEBAK SILIWANGI", "SEKELOA", "CIPETE UTARA", "MENTENG DALAM", "KEBON SIRIH",
    "AIRLANGGA", "NGAGEL", "KEDUNGDORO", "CATURTUNGGAL", "SINDUADI", "LEGIAN", "PELIATAN",
    "SESETAN", "PADANG BULAN", "PANAIKANG", "MANNURUKI", "KARANG ASAM", "SUNGAI MIAI",
    "DARAT SEKIP", "OEBOBO", "BATU MERAH", "KOTA BARU", "SUKAMAJU", "MEKARSARI", "SUKARAME",
)
STREETS: tuple[str, ...] = (
    "MERDEKA", "SUDIRMAN", "DIPONEGORO", "GATOT SUBROTO", "AHMAD YANI", "PAHLAWAN",
    "KARTINI", "GAJAH MADA", "HAYAM WURUK", "TEUKU UMAR", "IMAM BONJOL", "SISINGAMANGARAJA",
    "MELATI", "MAWAR", "KENANGA", "CEMPAKA", "ANGGREK", "RAYA BOGOR", "KALIURANG",
    "PANGERAN ANTASARI", "LETJEN SUPRAPTO", "PROF. DR. HAMKA", "KH. WAHID HASYIM",
)
RELIGIONS: tuple[tuple[str, int], ...] = (
    ("ISLAM", 86), ("KRISTEN", 7), ("KATOLIK", 3), ("HINDU", 2), ("BUDDHA", 1), ("KONGHUCU", 1),
)
MARITAL: tuple[tuple[str, int], ...] = (
    ("BELUM KAWIN", 30), ("KAWIN", 58), ("CERAI HIDUP", 5), ("CERAI MATI", 7),
)
OCCUPATIONS: tuple[str, ...] = (
    "PELAJAR/MAHASISWA", "KARYAWAN SWASTA", "WIRASWASTA", "PETANI/PEKEBUN",
    "MENGURUS RUMAH TANGGA", "PEGAWAI NEGERI SIPIL (PNS)", "BURUH HARIAN LEPAS", "PEDAGANG",
    "GURU", "NELAYAN/PERIKANAN", "SOPIR", "TENTARA NASIONAL INDONESIA (TNI)",
    "KEPOLISIAN RI (POLRI)", "PERAWAT", "DOKTER", "BELUM/TIDAK BEKERJA", "PENSIUNAN",
    "KARYAWAN BUMN", "TUKANG JAHIT", "BIDAN",
)
BLOOD_TYPES: tuple[str, ...] = ("A", "B", "AB", "O", "-", "-")
URGENT_REASONS: tuple[str, ...] = ("pilgrimage", "medical", "passport")
# fmt: on
