"""Column schema of Kaggle's House Prices files (Ames, Iowa), taken from data_description.txt."""

ID_COLUMN = "Id"
PRICE_COLUMN = "SalePrice"
CATEGORY_COLUMN = "HouseCategory"
TARGET_COLUMNS = (PRICE_COLUMN, CATEGORY_COLUMN)
N_CATEGORIES = 6

# Measured quantities, counts and years. Every other feature column is categorical, including
# MSSubClass, whose numbers are dwelling-type codes rather than amounts.
NUMERIC_FEATURES = (
    "LotFrontage", "LotArea", "OverallQual", "OverallCond", "YearBuilt", "YearRemodAdd",
    "MasVnrArea", "BsmtFinSF1", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF", "1stFlrSF", "2ndFlrSF",
    "LowQualFinSF", "GrLivArea", "BsmtFullBath", "BsmtHalfBath", "FullBath", "HalfBath",
    "BedroomAbvGr", "KitchenAbvGr", "TotRmsAbvGrd", "Fireplaces", "GarageYrBlt", "GarageCars",
    "GarageArea", "WoodDeckSF", "OpenPorchSF", "EnclosedPorch", "3SsnPorch", "ScreenPorch",
    "PoolArea", "MiscVal", "MoSold", "YrSold",
)  # fmt: skip

CATEGORICAL_FEATURES = (
    "MSSubClass", "MSZoning", "Street", "Alley", "LotShape", "LandContour", "Utilities",
    "LotConfig", "LandSlope", "Neighborhood", "Condition1", "Condition2", "BldgType", "HouseStyle",
    "RoofStyle", "RoofMatl", "Exterior1st", "Exterior2nd", "MasVnrType", "ExterQual", "ExterCond",
    "Foundation", "BsmtQual", "BsmtCond", "BsmtExposure", "BsmtFinType1", "BsmtFinType2",
    "Heating", "HeatingQC", "CentralAir", "Electrical", "KitchenQual", "Functional", "FireplaceQu",
    "GarageType", "GarageFinish", "GarageQual", "GarageCond", "PavedDrive", "PoolQC", "Fence",
    "MiscFeature", "SaleType", "SaleCondition",
)  # fmt: skip

FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# Columns that rate quality on Kaggle's five-step scale, worst to best.
QUALITY_SCALE = ("Po", "Fa", "TA", "Gd", "Ex")
QUALITY_FEATURES = (
    "ExterQual", "ExterCond", "BsmtQual", "BsmtCond", "HeatingQC", "KitchenQual", "FireplaceQu",
    "GarageQual", "GarageCond", "PoolQC",
)  # fmt: skip

# Columns the HouseCategory rules read.
CATEGORY_RULE_COLUMNS = ("BldgType", "HouseStyle", "YearBuilt", "YearRemodAdd")

# Kaggle writes "NA" for a missing value. The literal "None" (MasVnrType) is a real category.
MISSING_MARKERS = ("NA", "")
